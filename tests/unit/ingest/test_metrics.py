"""The ingest's /metrics, with an in-memory sink (against Kafka: tests/integration)."""

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.unit.ingest.test_server import MemorySink
from tests.unit.metrics.scrape import Samples, parse, value
from workers.ingest.server import create_app
from workers.metrics.ingest import IngestMetrics, SharedCounts
from workers.settings import Settings

Client = TestClient[web.Request, web.Application]
SECRET = "do-not-leak-me-0123456789"


def run(sink: MemorySink, fn: Callable[[Client], Awaitable[None]],
        settings: Settings | None = None) -> None:
    async def go() -> None:
        async with TestClient(TestServer(create_app(sink, settings or Settings()))) as client:
            await fn(client)
    asyncio.run(go())


async def scrape(c: Client) -> tuple[str, Samples]:
    r = await c.get("/metrics")
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
    text = await r.text()
    return text, parse(text)


def test_requests_by_route_pattern_and_status_never_the_raw_path() -> None:
    async def go(c: Client) -> None:
        for _ in range(3):
            assert (await c.post(f"/api/v1/event?token={SECRET}", data=b"{}")).status == 200
        assert (await c.post(f"/api.{SECRET}?p_x={SECRET}", data=b"{}")).status == 200
        assert (await c.post(f"/nowhere/{SECRET}", data=b"{}")).status == 404
        assert (await c.post("/api/v1/s2s/event", data=b"not json")).status == 400
        assert (await c.options(f"/api/v1/event/{SECRET}")).status == 200
        assert (await c.get("/health")).status == 200
        text, s = await scrape(c)
        name = "eventguard_ingest_requests_total"
        assert value(s, name, route="/api/v1/event", status="200") == 3
        assert value(s, name, route="/api.{name}", status="200") == 1
        assert value(s, name, route="/{tail}", status="404") == 1
        assert value(s, name, route="/api/v1/s2s/event", status="400") == 1
        assert value(s, name, route="OPTIONS", status="200") == 1
        assert value(s, name, route="/health", status="200") == 1
        assert value(s, "eventguard_ingest_kafka_ack_seconds_count") == 4
        assert value(s, "eventguard_ingest_body_bytes_count") == 5  # bodies read: not the 404
        assert value(s, "eventguard_ingest_body_bytes_bucket", le="64.0") == 5
        assert value(s, "eventguard_ingest_unavailable_total") == 0
        assert SECRET not in text and "sha256" not in text
    run(MemorySink(), go)


def test_503s_while_kafka_is_unavailable_are_counted() -> None:
    async def go(c: Client) -> None:
        for _ in range(2):
            assert (await c.post("/api/v1/s2s/event", data=b"{}")).status == 503
        assert (await c.get("/ready")).status == 503
        _, s = await scrape(c)
        assert value(s, "eventguard_ingest_unavailable_total") == 2
        assert value(s, "eventguard_ingest_requests_total", route="/api/v1/s2s/event",
                     status="503") == 2
        assert value(s, "eventguard_ingest_requests_total", route="/ready", status="503") == 1
        assert value(s, "eventguard_ingest_kafka_ack_seconds_count") == 0  # no ack came
    run(MemorySink(up=False), go)


def test_metrics_off() -> None:
    async def go(c: Client) -> None:
        assert (await c.post("/api/v1/event", data=b"{}")).status == 200
        r = await c.get("/metrics")
        assert r.status == 404 and "metrics are off" in await r.text()
    run(MemorySink(), go, Settings(metrics_enabled=False))


def test_every_process_of_a_shared_port_counts_in_one_scrape(tmp_path: Path) -> None:
    """`--processes N`: a scrape reaches one process; it reports the sum of all."""
    first, second = IngestMetrics(), IngestMetrics()
    first.requests["/api/v1/event", 200] += 5
    first.ack_seconds.observe(0.003)
    first.unavailable += 1
    second.requests["/api/v1/event", 200] += 2
    second.requests["/health", 503] += 1
    second.body_bytes.observe(100)
    SharedCounts(tmp_path, first, name="a").write()
    (tmp_path / "broken.json").write_text("{")  # a half-written file of a dead process
    total = SharedCounts(tmp_path, second, name="b").combined()
    assert total.requests == {("/api/v1/event", 200): 7, ("/health", 503): 1}
    assert total.ack_seconds.count == 1 and total.body_bytes.count == 1
    assert total.unavailable == 1
    assert second.requests[("/api/v1/event", 200)] == 2  # its own counts are left alone
