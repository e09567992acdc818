"""HTTP status codes of the ingest, with an in-memory sink (the real one is tested
against Kafka in tests/integration)."""

import asyncio
import gzip
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from workers import log_limits
from workers.ingest import metadata
from workers.ingest.main import check_body_limit
from workers.ingest.server import Check, RecordTooLarge, SinkUnavailable, create_app, endpoint_for
from workers.settings import ConfigError, Settings
from workers.topics import TopicSpec, load_specs

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


def test_ready_follows_the_sink() -> None:
    async def go(c: Client) -> None:
        assert (await c.get("/ready")).status == 200
        sink.up = False
        for path in ("/ready", "/health"):
            r = await c.get(path)
            assert r.status == 503 and r.headers["Retry-After"] == "5"
            assert "unreachable" in (await r.json())["error"]
    sink = MemorySink()
    with_client(sink, go)


def test_kafka_refusing_the_size_is_413_not_503() -> None:
    class TooLargeSink(MemorySink):
        async def send(self, record: metadata.RawRecord) -> None:
            raise RecordTooLarge("too large")

    async def go(c: Client) -> None:
        r = await c.post("/api/v1/s2s/event", data=b"{}")
        assert r.status == 413 and "too large" in (await r.json())["error"]
    with_client(TooLargeSink(), go)


def test_batch_over_the_cap_is_413() -> None:
    sink = MemorySink()
    settings = Settings(max_body_bytes=1024 * 1024, max_batch_events=3)

    async def go(c: Client) -> None:
        over: list[object] = [[{}] * 4, {"events": [{}] * 4}, {"batch": [{}] * 4}]
        for body in over:
            r = await c.post("/api/v1/s2s/event", data=orjson.dumps(body))
            assert r.status == 413, body
            assert (await r.json())["error"] == ("batch has 4 events; the limit is 3 "
                                                 "(ingest.max_batch_events); split it")
        within: list[object] = [[{}] * 3, {"events": [{}] * 3}, {"a": [{}] * 9}]
        for body in within:
            assert (await c.post("/api/v1/s2s/event", data=orjson.dumps(body))).status == 200
    with_client(sink, go, settings=settings)
    assert len(sink.records) == 3


def test_body_that_is_not_its_content_encoding_is_400() -> None:
    sink = MemorySink()

    async def go(c: Client) -> None:
        r = await c.post("/api/v1/event", data=b'{"event_type":"page"}',
                         headers={"Content-Encoding": "gzip"})
        assert r.status == 400
        assert "Content-Encoding" in (await r.json())["error"]
        good = gzip.compress(b'{"event_type":"page"}')
        r = await c.post("/api/v1/event", data=good, headers={"Content-Encoding": "gzip"})
        assert r.status == 200
    with_client(sink, go)
    assert [r.value for r in sink.records] == [b'{"event_type":"page"}']


def test_headers_with_invalid_utf8_are_stored_not_500() -> None:
    sink = MemorySink()

    async def go(c: Client) -> None:
        port = c.server.port
        assert port is not None
        reply = await raw_http(port, b"POST /api/v1/event HTTP/1.1\r\nHost: x\r\n"
                                     b"User-Agent: a\xff\xfeb\r\nX-Auth-Token: t\xffx\r\n"
                                     b"Origin: https://\xfe.example\r\n"
                                     b"Authorization: Basic \xff\r\n"
                                     b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
        assert reply.startswith(b"HTTP/1.1 200 "), reply
    with_client(sink, go)
    headers = dict(sink.records[0].headers)
    assert headers["eg-user-agent"] == b"a\xff\xfeb"
    assert headers["eg-origin"] == b"https://\xfe.example"


def test_unparsable_requests_get_400_and_one_short_log_line(
        caplog: pytest.LogCaptureFixture) -> None:
    log_limits.install()

    async def go(c: Client) -> None:
        port = c.server.port
        assert port is not None
        for request in (
            b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 9000 + b"\r\n\r\n",
            b"POST /api/v1/event HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
            b"POST /api/v1/event HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n"
            b"Content-Length: 10\r\n\r\n0123456789",
        ):
            reply = await raw_http(port, request)
            assert reply.split(b" ", 2)[1] == b"400", reply
    try:
        with caplog.at_level(logging.INFO, logger="aiohttp.server"):
            with_client(MemorySink(), go)
    finally:
        log_limits.uninstall()
    server_lines = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert server_lines and all(r.exc_info is None and r.getMessage().startswith("bad request")
                                for r in server_lines)
    assert len(server_lines) <= 4


def test_forwarded_address_only_from_a_trusted_proxy() -> None:
    xff = {"X-Forwarded-For": "1.1.1.1, 198.51.100.7", "X-Real-IP": "6.6.6.6"}

    async def go(c: Client) -> None:
        assert (await c.post("/api/v1/event", data=b"{}", headers=xff)).status == 200
    untrusted, trusted = MemorySink(), MemorySink()
    with_client(untrusted, go)
    with_client(trusted, go, settings=Settings(max_body_bytes=1024,
                                               trusted_proxies=("127.0.0.0/8",)))
    assert dict(untrusted.records[0].headers)["eg-ip"] == b"127.0.0.1"
    assert dict(trusted.records[0].headers)["eg-ip"] == b"6.6.6.6"

    async def no_real_ip(c: Client) -> None:
        r = await c.post("/api/v1/event", data=b"{}", headers={"X-Forwarded-For": xff[
            "X-Forwarded-For"]})
        assert r.status == 200
    trusted = MemorySink()
    with_client(trusted, no_real_ip, settings=Settings(max_body_bytes=1024,
                                                       trusted_proxies=("127.0.0.0/8",)))
    assert dict(trusted.records[0].headers)["eg-ip"] == b"198.51.100.7"


def test_the_public_port_has_no_admin_api_or_console() -> None:
    """Issue 20: the admin API and the console have a listener of their own."""
    async def go() -> None:
        sink = MemorySink()
        app = create_app(sink, Settings())
        async with TestClient(TestServer(app)) as c:
            origin = {"Origin": "https://evil.example"}
            for method, path in (("GET", "/api/v1/admin/keys"), ("POST", "/api/v1/admin/keys"),
                                 ("DELETE", "/api/v1/admin/keys/shop"),
                                 ("GET", "/console/"), ("POST", "/console/sign-in")):
                r = await c.request(method, path, headers=origin, data=b"{}")
                assert r.status == 404, (method, path, r.status)
                assert "ingest.admin_bind" in (await r.json())["error"]
                assert "Access-Control-Allow-Origin" not in r.headers
            assert sink.records == []
            r = await c.options("/api/v1/event", headers=origin)
            assert r.headers["Access-Control-Allow-Origin"] == "https://evil.example"
    asyncio.run(go())


def test_ingest_refuses_a_body_limit_the_topic_cannot_hold() -> None:
    specs = [TopicSpec("raw-events", 4, {"max.message.bytes": str(2 * 1024 * 1024)})]
    check_body_limit(1024 * 1024, specs)
    check_body_limit(2 * 1024 * 1024 - 64 * 1024, specs)
    with pytest.raises(ConfigError, match=r"lower max_body_bytes to 2031616 or less"):
        check_body_limit(2 * 1024 * 1024, specs)
    check_body_limit(50 * 1024 * 1024, [])  # no specs (an installed package): Kafka decides
    check_body_limit(1024 * 1024, load_specs())  # the shipped topics fit the default


async def raw_http(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(4096), 5)
    finally:
        writer.close()
