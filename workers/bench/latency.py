"""`eventguard bench latency --rate R --seconds S`: how long an event takes from the
ingest to its decision, at a steady rate.

A real ingest and a real worker (processes of their own, on fresh topics of the
embedded broker) get R requests/s for S seconds: a ~300-byte Jitsu event with a
valid server secret, sent on a fixed schedule (open loop: a slow answer does not
slow the sender down). Each 200's request id is matched with its audit-log
record, read back as it arrives. Printed, as p50 / p99 / max:

- `200 -> audit-log`: from the client's 200 to the audit record reaching a reader;
- `received -> decided`: the worker's own `lag_ms` (its decision time minus the
  ingest's `received_at`; one clock, one host).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson
import yaml
from aiokafka import AIOKafkaConsumer

from workers import kafka_security, topics
from workers.bench.follow import start_at_end
from workers.bench.loadgen import EVENT
from workers.devstack.processes import Proc, Stack, free_port
from workers.paths import cache_dir

PATH = "/api/v1/s2s/event"
TICK_S = 0.005
DRAIN_S = 30.0  # after the load, how long to wait for the last decisions


class AuditTimes:
    """Follows audit-log: request id -> (wall time read, lag_ms)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(topic, **kafka_security.options(),
                                         bootstrap_servers=bootstrap, group_id=None,
                                         auto_offset_reset="latest", fetch_max_wait_ms=5)
        self.seen: dict[str, tuple[float, int | None]] = {}
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await start_at_end(self.consumer)
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=20)
            now = time.time()
            for msgs in batches.values():
                for m in msgs:
                    value = orjson.loads(m.value)
                    self.seen[value["request_id"]] = (now, value.get("lag_ms"))

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.consumer.stop()


async def run(bootstrap: str, rate: float, seconds: float) -> int:
    run_id = secrets.token_hex(3)
    prefix = f"bench{run_id}-latency."
    token = secrets.token_urlsafe(16)
    await topics.apply(bootstrap, topics.load_specs(), prefix)
    stack = Stack(cache_dir() / "bench-logs", bootstrap, prefix)
    audit = AuditTimes(bootstrap, prefix + "audit-log")
    port = free_port()
    url = f"http://127.0.0.1:{port}{PATH}?token={token}"
    print(f"bench latency: {rate:,.0f} events/s for {seconds:.0f} s through an ingest and a "
          f"worker on {bootstrap}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.yaml"
        config.write_text(yaml.safe_dump({"api_keys": [{"id": "bench", "server_secret": token}]}))
        try:
            worker = stack.worker(config, name="latency-worker")
            stack.ingest(config, port, name="latency-ingest")
            await audit.start()
            connector = aiohttp.TCPConnector(limit=512)
            async with aiohttp.ClientSession(connector=connector) as session:
                await _until_deciding(session, url, audit, worker)
                answered, failed = await _steady(session, url, rate, seconds)
            deadline = time.monotonic() + DRAIN_S
            while time.monotonic() < deadline and any(r not in audit.seen for r, _ in answered):
                await asyncio.sleep(0.1)
        finally:
            await audit.stop()
            stack.stop()
            await topics.delete_prefixed(bootstrap, prefix)
    after_200 = [(audit.seen[r][0] - t) * 1000 for r, t in answered if r in audit.seen]
    lags = [float(lag) for r, _ in answered if r in audit.seen
            for lag in (audit.seen[r][1],) if lag is not None]
    missing = sum(1 for r, _ in answered if r not in audit.seen)
    print(f"  sent {len(answered) + failed:,}: {len(answered):,} answered 200, {failed} not; "
          f"{missing} 200s without an audit record after {DRAIN_S:.0f} s", flush=True)
    for name, values in (("200 -> audit-log", after_200), ("received -> decided", lags)):
        if len(values) < 2:
            print(f"  {name:<20} too few samples")
            continue
        q = statistics.quantiles(values, n=100, method="inclusive")
        print(f"  {name:<20} p50 {q[49]:7.1f} ms   p99 {q[98]:7.1f} ms   max {max(values):7.1f} ms")
    return 0


async def _until_deciding(session: aiohttp.ClientSession, url: str, audit: AuditTimes,
                          worker: Proc, timeout_s: float = 120.0) -> None:
    """Probe until the worker decides (it must have joined its group and loaded keys)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not worker.alive():
            raise RuntimeError(f"{worker.name} exited; last lines:\n{worker.tail()}")
        async with session.post(url, data=EVENT) as resp:
            rid = (await resp.json())["request_id"] if resp.status == 200 else None
        for _ in range(20):
            await asyncio.sleep(0.05)
            if rid in audit.seen:
                await asyncio.sleep(1.0)  # let the worker settle after its first decision
                return
    raise RuntimeError(f"{worker.name} never decided; see {worker.log}")


async def _steady(session: aiohttp.ClientSession, url: str, rate: float, seconds: float
                  ) -> tuple[list[tuple[str, float]], int]:
    """Send `rate` requests/s for `seconds`, on schedule; ([(request id, 200 time)], failed)."""
    answered: list[tuple[str, float]] = []
    failed = [0]
    pending: set[asyncio.Task[None]] = set()

    async def one() -> None:
        try:
            async with session.post(url, data=EVENT,
                                    headers={"Content-Type": "application/json"}) as resp:
                body = await resp.read()
                done = time.time()
        except (aiohttp.ClientError, OSError):
            failed[0] += 1
            return
        if resp.status == 200:
            answered.append((orjson.loads(body)["request_id"], done))
        else:
            failed[0] += 1

    total = int(rate * seconds)
    start = time.perf_counter()
    sent = 0
    while sent < total:
        due = min(total, int((time.perf_counter() - start) * rate) + 1)
        for _ in range(due - sent):
            task = asyncio.create_task(one())
            pending.add(task)
            task.add_done_callback(pending.discard)
        sent = due
        await asyncio.sleep(TICK_S)
    if pending:
        await asyncio.gather(*pending)
    return answered, failed[0]
