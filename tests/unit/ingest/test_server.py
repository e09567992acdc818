"""HTTP status codes of the ingest, with an in-memory sink (the real one is tested
against Kafka in tests/integration)."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from workers.ingest import metadata
from workers.ingest.server import Check, SinkUnavailable, create_app, endpoint_for
from workers.settings import Settings

Client = TestClient[web.Request, web.Application]


class MemorySink:
    def __init__(self, up: bool = True) -> None:
        self.up = up
        self.records: list[metadata.RawRecord] = []

    async def send(self, record: metadata.RawRecord) -> None:
        if not self.up:
            raise SinkUnavailable("down")
        self.records.append(record)

    async def check(self) -> Check:
        return Check(self.up, self.up, None if self.up else "Kafka is unreachable")


def with_client(sink: MemorySink, fn: Callable[[Client], Awaitable[None]],
                limit: int = 1024, settings: Settings | None = None) -> None:
    async def go() -> None:
        app = create_app(sink, settings or Settings(max_body_bytes=limit))
        async with TestClient(TestServer(app)) as client:
            await fn(client)
    asyncio.run(go())


def test_endpoints() -> None:
    assert endpoint_for("/api/v1/event") == endpoint_for("/api/v1/events") == "client"
    assert endpoint_for("/api.x7f") == "client"
    assert endpoint_for("/api/v1/s2s/event") == endpoint_for("/api/v1/s2s/events") == "s2s"
    assert endpoint_for("/other") is None


def test_ok_only_after_sink_took_it() -> None:
    sink = MemorySink()

    async def go(c: Client) -> None:
        r = await c.post("/api/v1/event?token=t", data=b'{"event_type":"page"}')
        body = await r.json()
        assert r.status == 200 and body["status"] == "ok"
        assert sink.records[0].key.decode() == body["request_id"]
    with_client(sink, go)


def test_unavailable_kafka_is_503_with_retry_after() -> None:
    async def go(c: Client) -> None:
        r = await c.post("/api/v1/s2s/event", data=b"{}")
        assert r.status == 503 and r.headers["Retry-After"] == "5"
        assert "retry later" in (await r.json())["error"]
        h = await c.get("/health")
        assert h.status == 503
    with_client(MemorySink(up=False), go)


def test_bad_bodies() -> None:
    sink = MemorySink()

    async def go(c: Client) -> None:
        r = await c.post("/api/v1/event", data=b"{nope")
        assert r.status == 400 and "not valid JSON" in (await r.json())["error"]
        r = await c.post("/api/v1/event", data=b'{"a":"\xff"}')
        assert r.status == 400 and "UTF-8" in (await r.json())["error"]
        r = await c.post("/api/v1/event", data=b"[" + b"1," * 600 + b"1]")
        assert r.status == 413 and "limit is 1024" in (await r.json())["error"]

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b" " * 200
        r = await c.post("/api/v1/event", data=chunks())
        assert r.status == 413
        r = await c.post("/nowhere", data=b"{}")
        assert r.status == 404
    with_client(sink, go)
    assert sink.records == []


def test_cors_preflight_and_echo() -> None:
    async def go(c: Client) -> None:
        r = await c.options("/api/v1/event", headers={"Origin": "https://a.shop.com"})
        assert r.status == 200
        assert r.headers["Access-Control-Allow-Origin"] == "https://a.shop.com"
        assert r.headers["Access-Control-Max-Age"] == "86400"
        for h in ("X-Auth-Token", "Authorization", "X-Signature"):
            assert h in r.headers["Access-Control-Allow-Headers"]
        r = await c.post("/api/v1/event", data=b"{}", headers={"Origin": "https://b.io"})
        assert r.headers["Access-Control-Allow-Origin"] == "https://b.io"
    with_client(MemorySink(), go)


def test_error_messages_never_echo_the_token() -> None:
    async def go(c: Client) -> None:
        r = await c.post("/api/v1/event?token=SUPERSECRET", data=b"{bad")
        assert b"SUPERSECRET" not in await r.read()
    with_client(MemorySink(), go)


def test_health_ok() -> None:
    async def go(c: Client) -> None:
        r = await c.get("/health")
        assert r.status == 200 and orjson.loads(await r.read()) == {"status": "ok"}
    with_client(MemorySink(), go)
