"""`eventguard bench pipeline`: worker events/s per sender method, against two
pass-through baselines on the same broker: plain aiokafka (what Python and Kafka allow)
and a bare Faust agent with the worker's app settings (what Faust allows).

The baselines and the worker run as processes of their own, each on its own
topics (a fresh prefix per run), and get N raw-events records each, written
straight to Kafka as the ingest writes them (workers/bench/workloads.py). Each
pass is timed from the first record produced until its N-th output record has
been read back from audit-log. The pure decision core is timed in-process on
the same records.

By default a usage process (`eventguard usage`) runs beside the worker, as in a
deployment: it reads the worker's audit-log and shares the machine's cores, so the
worker's ratio is measured with usage counting. `--without-usage` leaves it out.
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

from workers import kafka_security, topics
from workers.auth.authorize import decide
from workers.auth.request import RawRequest
from workers.bench.workloads import METHODS, SECRET_MIX, Record, Workload
from workers.devstack.processes import Proc, Stack, wait_http
from workers.paths import cache_dir
from workers.usage import client as usage_client

WARMUP = 5000  # untimed records through each pass before the timed ones
READY = {"passthrough": b"passthrough: assigned", "faust": b"[^Worker]: Ready"}


async def run(bootstrap: str, events: int, methods: tuple[str, ...] = METHODS,
              processes: int = 1, usage: bool = True) -> int:
    load = Workload()
    run_id = secrets.token_hex(3)
    print(f"bench pipeline: {events} events per method on {bootstrap}, {processes} "
          f"process(es) per pass, {'with' if usage else 'without'} a usage process beside "
          f"the worker; secrets mix: {', '.join(SECRET_MIX)}", flush=True)
    prefixes = {name: f"bench{run_id}-{name}." for name in ("base", "faust", "worker")}
    for prefix in prefixes.values():
        await topics.apply(bootstrap, topics.load_specs(), prefix)
    logs = cache_dir() / "bench-logs"
    per = "" if processes == 1 else "  (total; per process: {:,.0f})"
    aiokafka_rate = await _baseline(
        bootstrap, prefixes["base"], logs, load, run_id + "b", events, "passthrough",
        [sys.executable, "-m", "workers.bench.passthrough", bootstrap, prefixes["base"]],
        processes, READY["passthrough"])
    print(f"  {'aiokafka pass-through':<24} {aiokafka_rate:>10,.0f} ev/s  1.00  "
          "(plain aiokafka consume -> produce x2)" + per.format(aiokafka_rate / processes),
          flush=True)
    faust_rate = await _baseline(
        bootstrap, prefixes["faust"], logs, load, run_id + "f", events, "faust-passthrough",
        [sys.executable, "-m", "workers.bench.faust_passthrough", "worker", "--without-web",
         "-l", "info"], processes, READY["faust"])
    print(f"  {'bare Faust pass-through':<24} {faust_rate:>10,.0f} ev/s  "
          f"{faust_rate / aiokafka_rate:.2f}  (a Faust agent with the worker's settings, "
          "copying each record to two topics)" + per.format(faust_rate / processes), flush=True)
    print(f"  {'method':<10} {'decision core':>16} {'worker':>14} {'/ aiokafka':>11} "
          f"{'/ bare Faust':>13}" + ("" if processes == 1 else f" {'per process':>14}"))
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.yaml"
        config.write_text(yaml.safe_dump(load.config()))
        stack = Stack(logs, bootstrap, prefixes["worker"])
        try:
            procs = await _started(
                [stack.worker(config, name=f"bench-worker{_n(i, processes)}")
                 for i in range(processes)], READY["faust"])
            if usage:
                counting = stack.usage(config, name="bench-usage")
                # Ready: it has its partitions and knows the keys, so it counts from the
                # first timed record (an untimed start-up would flatter the worker).
                await asyncio.to_thread(wait_http, counting.url + "/ready", counting, 120.0)
                procs.append(counting)
            for method in methods:
                records = load.records(method, run_id, events)
                core = decision_core_rate(load, records)
                worker_s = await timed_pass(bootstrap, prefixes["worker"], records, procs, load,
                                            load.records(method, run_id + "w", WARMUP))
                rate = events / worker_s
                print(f"  {method:<10} {core:>12,.0f} d/s {rate:>10,.0f} ev/s "
                      f"{rate / aiokafka_rate:>11.2f} {rate / faust_rate:>13.2f}"
                      + ("" if processes == 1 else f" {rate / processes:>9,.0f} ev/s"),
                      flush=True)
            if usage:
                await asyncio.sleep(3.0)  # a tally batch is about a second of records
                body = await usage_client.fetch(counting.url)
                print(f"  usage process: {sum(k['total'] for k in body['keys']):,} decisions "
                      "counted 3 s after the last pass (warm-up and probes included)",
                      flush=True)
        finally:
            stack.stop()
            await topics.delete_prefixed(bootstrap, f"bench{run_id}-")
    return 0


async def _baseline(bootstrap: str, prefix: str, logs: Path, load: Workload, run_id: str,
                    events: int, name: str, argv: list[str], processes: int, ready: bytes
                    ) -> float:
    """Events/s of pass-through processes on the secrets records."""
    stack = Stack(logs, bootstrap, prefix)
    try:
        procs = await _started([stack.process(f"{name}{_n(i, processes)}", argv)
                                for i in range(processes)], ready)
        seconds = await timed_pass(bootstrap, prefix, load.records("secrets", run_id, events),
                                   procs, load, load.records("secrets", run_id + "w", WARMUP))
    finally:
        stack.stop()
    return events / seconds


def _n(index: int, processes: int) -> str:
    return "" if processes == 1 else f"-{index + 1}"


async def _started(procs: list[Proc], ready: bytes, timeout_s: float = 120) -> list[Proc]:
    """Wait until every process has its partitions: the group is whole before the timing."""
    if len(procs) == 1:
        return procs
    starts = {p.name: p.log.stat().st_size if p.log.exists() else 0 for p in procs}
    deadline = time.monotonic() + timeout_s
    while not all(ready in p.log.read_bytes()[starts[p.name]:] for p in procs):
        for p in procs:
            if not p.alive():
                raise RuntimeError(f"{p.name} exited; last lines:\n{p.tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"not every process got partitions in {timeout_s:.0f}s")
        await asyncio.sleep(0.2)
    return procs


def decision_core_rate(load: Workload, records: list[Record], seconds: float = 1.0) -> float:
    state = load.state()
    requests = [RawRequest.from_record(k, v, h, "x") for k, v, h in records[:1000]]
    done, start, now = 0, time.perf_counter(), time.time()
    while time.perf_counter() - start < seconds:
        for r in requests:
            decide(r, state, now)
        done += len(requests)
    return done / (time.perf_counter() - start)


async def timed_pass(bootstrap: str, prefix: str, records: list[Record], procs: list[Proc],
                     load: Workload, warmup: list[Record] | None = None) -> float:
    """Seconds from the first record produced until the last output is read back, after an
    untimed pass of the `warmup` records: a process just started (the baselines) still
    finishes its own start-up, which a worker does while it loads its keys."""
    counter = OutputCounter(bootstrap, prefix + "audit-log")
    await counter.start()
    producer = AIOKafkaProducer(**kafka_security.options(),
                                bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                enable_idempotence=True)
    await producer.start()
    try:
        await _until_ready(producer, counter, prefix, procs, load)
        if warmup:
            await _pass(producer, counter, prefix, warmup, procs)
        return await _pass(producer, counter, prefix, records, procs)
    finally:
        await producer.stop()
        await counter.stop()


async def _pass(producer: AIOKafkaProducer, counter: OutputCounter, prefix: str,
                records: list[Record], procs: list[Proc]) -> float:
    wanted = {k for k, _, _ in records}
    counter.watch(wanted)
    started = time.perf_counter()
    sends = [await producer.send(prefix + "raw-events", v, key=k, headers=h)
             for k, v, h in records]
    await asyncio.gather(*sends)
    await counter.wait(lambda: counter.seen >= len(wanted), procs, timeout_s=600)
    return time.perf_counter() - started


async def _until_ready(producer: AIOKafkaProducer, counter: OutputCounter, prefix: str,
                       procs: list[Proc], load: Workload) -> None:
    """Probe every partition until the processors answer: a worker must have loaded its keys."""
    topic = prefix + "raw-events"
    partitions = sorted(await producer.partitions_for(topic))
    for n in range(120):
        probes = [load.record("secrets", f"probe-{n}-{p}", 1) for p in partitions]
        counter.watch({key for key, _, _ in probes})
        for p, (key, value, headers) in zip(partitions, probes, strict=True):
            await producer.send_and_wait(topic, value, key=key, headers=headers, partition=p)
        wanted = len(probes)
        if await counter.wait(lambda: counter.seen >= wanted, procs, timeout_s=1.5,  # noqa: B023
                              raising=False):
            return
    raise RuntimeError(f"{procs[0].name} never answered; see {procs[0].log}")


class OutputCounter:
    """Counts output records whose key is in the watched set."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(topic, **kafka_security.options(),
                                         bootstrap_servers=bootstrap, group_id=None,
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

    async def wait(self, done: Callable[[], bool], procs: list[Proc], timeout_s: float,
                   raising: bool = True) -> bool:
        deadline = time.monotonic() + timeout_s
        while not done():
            for proc in procs:
                if not proc.alive():
                    raise RuntimeError(f"{proc.name} exited; last lines:\n{proc.tail()}")
            if time.monotonic() > deadline:
                if raising:
                    raise TimeoutError(f"{procs[0].name}: {self.seen} outputs in "
                                       f"{timeout_s:.0f}s")
                return False
            await asyncio.sleep(0.01)
        return True

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
        await self.consumer.stop()
