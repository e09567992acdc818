"""Kill the broker under steady load, start it again, and check that the ingest
and the worker come back by themselves with nothing lost.

This test runs its own embedded broker (`Broker(home)`, same jars, its own data
and ports), never the shared one: it kills it. Figures are printed, not timed
against a budget, except the recovery bound the ingest promises (200s again
within 10 s of the broker's return).
"""

from __future__ import annotations

import asyncio
import functools
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
import yaml

from workers import topics
from workers.cli.decisions import Collector
from workers.devstack.broker import Broker
from workers.devstack.processes import Proc, Stack, free_port
from workers.paths import cache_dir

pytestmark = pytest.mark.chaos

SECRET = f"chaos-{secrets.token_hex(8)}"
SENDERS = 16
RATE_PER_S = 200.0  # all senders together
WARMUP_S = 6.0
OUTAGE_S = 10.0
AFTER_S = 15.0  # load after the first 200 following the restart
RECOVERY_BOUND_S = 10.0
AIOKAFKA_LINE = re.compile(r" aiokafka[\w.]*: ")
# Faust's log format has no logger name: aiokafka's usual outage lines, by text.
WORKER_KAFKA_LINE = re.compile(r"Unable connect to node|Unable to update metadata|"
                               r"Failed fetch messages|Coordinator Request failed|"
                               r"Failed fetch offsets|NodeNotReadyError")
FOLDED_METADATA = re.compile(r"Unable to update metadata from .*\((\d+) more like this")
# Failed metadata refreshes the log limit folded, over the whole outage: ~10 a second per
# client with aiokafka's backoff; a client refreshing without one (the producer during a
# SIGTERM outage, workers/kafka/metadata_backoff.py) made 20,000-50,000 per 10 s.
MAX_FOLDED_METADATA = 5000


@dataclass
class Answer:
    sent: float
    done: float
    status: int
    retry_after: str | None
    request_id: str | None


@dataclass
class Probe:
    at: float
    health: int
    ready: int


@dataclass
class Timeline:
    killed: float = 0.0  # the broker process is gone
    restarting: float = 0.0  # start() called
    back: float = 0.0  # start() returned: the broker serves requests
    answers: list[Answer] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)


@dataclass
class Chaos:
    broker: Broker
    bootstrap: str
    prefix: str
    url: str
    stack: Stack
    ingest: Proc
    worker: Proc


@pytest.fixture
def chaos(tmp_path: Path) -> Iterator[Chaos]:
    prefix = f"chaos{secrets.token_hex(3)}."
    broker = Broker(tmp_path / "kafka")
    bootstrap = broker.start().bootstrap
    stack = Stack(cache_dir() / "test-logs" / prefix.rstrip("."), bootstrap, prefix)
    try:
        asyncio.run(topics.apply(bootstrap, topics.load_specs(), prefix))
        config = tmp_path / "eventguard.yaml"
        config.write_text(yaml.safe_dump({
            "api_keys": [{"id": "chaos", "server_secret": SECRET}],
            "server": {"api_keys_reload_sec": 1},
        }))
        port = free_port()
        worker = stack.worker(config)
        ingest = stack.ingest(config, port)
        c = Chaos(broker, bootstrap, prefix, f"http://127.0.0.1:{port}", stack, ingest, worker)
        asyncio.run(_until_deciding(c))
        yield c
    finally:
        stack.stop()
        broker.stop(kill=True)


async def _until_deciding(c: Chaos) -> None:
    async with Collector(c.bootstrap, prefix=c.prefix) as col, aiohttp.ClientSession() as s:
        for _ in range(90):
            if not c.worker.alive():
                raise RuntimeError(f"worker exited:\n{c.worker.tail()}")
            async with s.post(f"{c.url}/api/v1/s2s/event?token={SECRET}",
                              data=b'{"event_type":"probe"}') as r:
                rid = str((await r.json())["request_id"])
            if await col.wait(functools.partial(col.decided, rid), 2.0):
                return
        raise RuntimeError(f"the worker never decided; see {c.worker.log}")


async def _sender(s: aiohttp.ClientSession, url: str, t: Timeline, stop: asyncio.Event) -> None:
    gap = SENDERS / RATE_PER_S
    while not stop.is_set():
        sent = time.monotonic()
        try:
            async with s.post(url, data=b'{"event_type":"track"}') as r:
                body = await r.json(content_type=None)
                t.answers.append(Answer(sent, time.monotonic(), r.status,
                                        r.headers.get("Retry-After"),
                                        body.get("request_id") if r.status == 200 else None))
        except (aiohttp.ClientError, TimeoutError) as exc:
            t.answers.append(Answer(sent, time.monotonic(), -1, None, type(exc).__name__))
        await asyncio.sleep(max(0.0, gap - (time.monotonic() - sent)))


async def _prober(s: aiohttp.ClientSession, url: str, t: Timeline, stop: asyncio.Event) -> None:
    async def status(path: str) -> int:
        try:
            async with s.get(url + path) as r:
                return r.status
        except (aiohttp.ClientError, TimeoutError):
            return -1
    while not stop.is_set():
        health, ready = await asyncio.gather(status("/health"), status("/ready"))
        t.probes.append(Probe(time.monotonic(), health, ready))
        await asyncio.sleep(0.5)


async def _run_load(c: Chaos, kill: bool) -> Timeline:
    t = Timeline()
    stop = asyncio.Event()
    timeout = aiohttp.ClientTimeout(total=30)
    url = f"{c.url}/api/v1/s2s/event?token={SECRET}"
    async with aiohttp.ClientSession(timeout=timeout,
                                     connector=aiohttp.TCPConnector(limit=64)) as s:
        tasks = [asyncio.create_task(_sender(s, url, t, stop)) for _ in range(SENDERS)]
        tasks.append(asyncio.create_task(_prober(s, c.url, t, stop)))
        await asyncio.sleep(WARMUP_S)
        await asyncio.to_thread(c.broker.stop, 30.0, kill)
        t.killed = time.monotonic()
        await asyncio.sleep(OUTAGE_S)
        t.restarting = time.monotonic()
        await asyncio.to_thread(c.broker.start)
        t.back = time.monotonic()
        deadline = t.back + 60.0
        while time.monotonic() < deadline and _first_ok_after(t, t.back) is None:
            await asyncio.sleep(0.2)
        await asyncio.sleep(AFTER_S)
        stop.set()
        await asyncio.gather(*tasks)
    return t


def _first_ok_after(t: Timeline, since: float) -> Answer | None:
    oks = [a for a in t.answers if a.status == 200 and a.sent >= since]
    return min(oks, key=lambda a: a.done) if oks else None


async def _decisions(c: Chaos, ids: set[str], timeout_s: float) -> tuple[set[str], set[str]]:
    """(the ids without a decision and audit record, every decided id), read from the start."""
    async with Collector(c.bootstrap, from_beginning=True, prefix=c.prefix) as col:
        await col.wait(lambda: all(col.decided(i) for i in ids), timeout_s)
        return {i for i in ids if not col.decided(i)}, {i for i in col.by_id if col.decided(i)}


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_ingest_and_worker_survive_a_broker_restart(chaos: Chaos, how: str) -> None:
    t = asyncio.run(_run_load(chaos, kill=how == "SIGKILL"))
    ok_ids = {a.request_id for a in t.answers if a.status == 200 and a.request_id}
    lost, decided = asyncio.run(_decisions(chaos, ok_ids, 120.0))

    outage = [a for a in t.answers if t.killed + 1.0 < a.done < t.back - 1.0]
    first_ok = _first_ok_after(t, t.back)
    recover_s = first_ok.done - t.back if first_ok else float("inf")
    tail_window = [a for a in t.answers if a.sent > t.back + RECOVERY_BOUND_S + 2.0]
    probes_down = [p for p in t.probes if t.killed + 5.0 < p.at < t.restarting]
    probes_after = [p for p in t.probes if p.at > t.back + RECOVERY_BOUND_S]
    ingest_log = chaos.ingest.log.read_text(errors="replace").splitlines()
    aiokafka_lines = sum(1 for line in ingest_log if AIOKAFKA_LINE.search(line))
    tracebacks = sum(1 for line in ingest_log if line.startswith("Traceback"))
    worker_log = chaos.worker.log.read_text(errors="replace").splitlines()
    worker_aiokafka = sum(1 for line in worker_log if WORKER_KAFKA_LINE.search(line))
    refreshes = sum(int(m.group(1)) for line in worker_log
                    if (m := FOLDED_METADATA.search(line)))
    statuses: dict[int, int] = {}
    for a in t.answers:
        statuses[a.status] = statuses.get(a.status, 0) + 1
    late = {a.request_id for a in t.answers if a.status != 200} & decided
    print(f"\nbroker restart ({how}): requests {len(t.answers)}, "
          f"statuses {dict(sorted(statuses.items()))}"
          f", during outage {len(outage)} (200: {sum(a.status == 200 for a in outage)})"
          f", first 200 {recover_s:.1f}s after the broker was back"
          f" (broker down {t.back - t.killed:.1f}s incl. start-up)"
          f", lost {len(lost)} of {len(ok_ids)} acknowledged"
          f", ingest log: {len(ingest_log)} lines, {aiokafka_lines} aiokafka, "
          f"{tracebacks} tracebacks; worker log: {worker_aiokafka} aiokafka lines "
          f"({refreshes} failed metadata refreshes folded), "
          f"alive {chaos.worker.alive()}; late {len(late)}")

    assert outage, "no request was answered during the outage"
    assert all(a.status == 503 and a.retry_after for a in outage), \
        {(a.status, a.retry_after) for a in outage}
    assert recover_s < RECOVERY_BOUND_S, f"no 200 within {RECOVERY_BOUND_S}s of the broker's return"
    assert tail_window and all(a.status == 200 for a in tail_window), \
        {a.status for a in tail_window}
    assert probes_down and all(p.health == 503 and p.ready == 503 for p in probes_down), \
        probes_down
    assert probes_after and all(p.health == 200 and p.ready == 200 for p in probes_after), \
        probes_after
    assert not lost, f"{len(lost)} acknowledged requests never decided, e.g. {sorted(lost)[:3]}"
    assert aiokafka_lines < 200, f"{aiokafka_lines} aiokafka lines in {chaos.ingest.log}"
    assert tracebacks == 0, f"tracebacks in {chaos.ingest.log}"
    # The worker has more clients (Faust's consumer and producer, the
    # nonce follower), each logging every failed attempt without the rate limit.
    assert worker_aiokafka < 400, f"{worker_aiokafka} aiokafka lines in {chaos.worker.log}"
    assert refreshes < MAX_FOLDED_METADATA, f"a metadata refresh loop: {chaos.worker.log}"
    # A line the rate limit rewrote once failed to format in the worker (mode's formatter).
    for log in (chaos.ingest.log, chaos.worker.log):
        assert "--- Logging error ---" not in log.read_text(errors="replace"), log
    assert chaos.worker.alive(), chaos.worker.tail()
