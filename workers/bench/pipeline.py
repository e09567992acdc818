"""`eventguard bench pipeline`: worker events/s per sender method, against two
pass-through baselines on the same broker: plain aiokafka (what Python and Kafka allow)
and a bare Faust agent with the worker's app settings (what Faust allows).

The baselines and the worker run as processes of their own, each on its own
topics (a fresh prefix per run), and get N raw-events records each, written
straight to Kafka as the ingest writes them (workers/bench/workloads.py). Each
pass is timed from the first record produced until its N-th output record has
been read back from audit-log. The pure decision core is timed in-process on
the same records.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from workers import topics
from workers.auth.authorize import decide
from workers.auth.request import RawRequest
from workers.bench.workloads import METHODS, SECRET_MIX, Record, Workload
from workers.devstack import Proc, Stack
from workers.paths import cache_dir


async def run(bootstrap: str, events: int, methods: tuple[str, ...] = METHODS) -> int:
    load = Workload()
    run_id = secrets.token_hex(3)
    print(f"bench pipeline: {events} events per method on {bootstrap}; secrets mix: "
          f"{', '.join(SECRET_MIX)}", flush=True)
    prefixes = {name: f"bench{run_id}-{name}." for name in ("base", "faust", "worker")}
    for prefix in prefixes.values():
        await topics.apply(bootstrap, topics.load_specs(), prefix)
    logs = cache_dir() / "bench-logs"
    aiokafka_rate = await _baseline(
        bootstrap, prefixes["base"], logs, load, run_id + "b", events, "passthrough",
        [sys.executable, "-m", "workers.bench.passthrough", bootstrap, prefixes["base"]])
    print(f"  {'aiokafka pass-through':<24} {aiokafka_rate:>10,.0f} ev/s  1.00  "
          "(plain aiokafka consume -> produce x2)", flush=True)
    faust_rate = await _baseline(
        bootstrap, prefixes["faust"], logs, load, run_id + "f", events, "faust-passthrough",
        [sys.executable, "-m", "workers.bench.faust_passthrough", "worker", "--without-web",
         "-l", "info"])
    print(f"  {'bare Faust pass-through':<24} {faust_rate:>10,.0f} ev/s  "
          f"{faust_rate / aiokafka_rate:.2f}  (a Faust agent with the worker's settings, "
          "copying each record to two topics)", flush=True)
    print(f"  {'method':<10} {'decision core':>16} {'worker':>14} {'/ aiokafka':>11} "
          f"{'/ bare Faust':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.yaml"
        config.write_text(yaml.safe_dump(load.config()))
        stack = Stack(logs, bootstrap, prefixes["worker"])
        try:
            proc = stack.worker(config, name="bench-worker")
            for method in methods:
                records = load.records(method, run_id, events)
                core = decision_core_rate(load, records)
                worker_s = await timed_pass(bootstrap, prefixes["worker"], records, proc, load)
                rate = events / worker_s
                print(f"  {method:<10} {core:>12,.0f} d/s {rate:>10,.0f} ev/s "
                      f"{rate / aiokafka_rate:>11.2f} {rate / faust_rate:>13.2f}", flush=True)
        finally:
            stack.stop()
    return 0


async def _baseline(bootstrap: str, prefix: str, logs: Path, load: Workload, run_id: str,
                    events: int, name: str, argv: list[str]) -> float:
    """Events/s of a pass-through process on the secrets records."""
    stack = Stack(logs, bootstrap, prefix)
    try:
        proc = stack.process(name, argv)
        seconds = await timed_pass(bootstrap, prefix, load.records("secrets", run_id, events),
                                   proc, load)
    finally:
        stack.stop()
    return events / seconds


def decision_core_rate(load: Workload, records: list[Record], seconds: float = 1.0) -> float:
    state = load.state()
    requests = [RawRequest.from_record(k, v, h, "x") for k, v, h in records[:1000]]
    done, start, now = 0, time.perf_counter(), time.time()
    while time.perf_counter() - start < seconds:
        for r in requests:
            decide(r, state, now)
        done += len(requests)
    return done / (time.perf_counter() - start)


async def timed_pass(bootstrap: str, prefix: str, records: list[Record], proc: Proc,
                     load: Workload) -> float:
    """Seconds from the first record produced until the last output is read back."""
    counter = OutputCounter(bootstrap, prefix + "audit-log")
    await counter.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                enable_idempotence=True)
    await producer.start()
    try:
        await _until_ready(producer, counter, prefix, proc, load)
        wanted = {k for k, _, _ in records}
        counter.watch(wanted)
        started = time.perf_counter()
        sends = [await producer.send(prefix + "raw-events", v, key=k, headers=h)
                 for k, v, h in records]
        await asyncio.gather(*sends)
        await counter.wait(lambda: counter.seen >= len(wanted), proc, timeout_s=600)
        return time.perf_counter() - started
    finally:
        await producer.stop()
        await counter.stop()


async def _until_ready(producer: AIOKafkaProducer, counter: OutputCounter, prefix: str,
                       proc: Proc, load: Workload) -> None:
    """Probe until the processor answers: a worker must have loaded its keys first."""
    for n in range(120):
        key, value, headers = load.record("secrets", f"probe-{n}", 1)
        counter.watch({key})
        await producer.send_and_wait(prefix + "raw-events", value, key=key, headers=headers)
        if await counter.wait(lambda: counter.seen >= 1, proc, timeout_s=1.5, raising=False):
            return
    raise RuntimeError(f"{proc.name} never answered; see {proc.log}")


class OutputCounter:
    """Counts output records whose key is in the watched set."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                         auto_offset_reset="earliest", fetch_max_wait_ms=50)
        self.wanted: set[bytes] = set()
        self.seen = 0
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self.task = asyncio.create_task(self._run())

    def watch(self, keys: set[bytes]) -> None:
        self.wanted, self.seen = keys, 0

    async def _run(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=100, max_records=10000)
            for msgs in batches.values():
                self.seen += sum(1 for m in msgs if m.key in self.wanted)

    async def wait(self, done: Callable[[], bool], proc: Proc, timeout_s: float,
                   raising: bool = True) -> bool:
        deadline = time.monotonic() + timeout_s
        while not done():
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited; last lines:\n{proc.tail()}")
            if time.monotonic() > deadline:
                if raising:
                    raise TimeoutError(f"{proc.name}: {self.seen} outputs in {timeout_s:.0f}s")
                return False
            await asyncio.sleep(0.01)
        return True

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
        await self.consumer.stop()
