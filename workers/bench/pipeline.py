"""`eventguard bench pipeline`: worker events/s against a plain aiokafka pass-through.

Both run as processes of their own on the same broker, each on its own topics
(a fresh prefix per run). Each gets the same N raw-events records, written
straight to Kafka as the ingest writes them (a mix of valid client, valid
server, unknown token and wrong origin), and is timed from the first record
produced until its N-th output record has been read back from audit-log.
The pure decision core is timed in-process on the same mix.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from workers import topics
from workers.auth import secrets as digests
from workers.auth.authorize import AuthState, decide
from workers.auth.keys import KeyRecord, SecretRef
from workers.auth.request import RawRequest
from workers.devstack import Proc, Stack
from workers.paths import cache_dir

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]
KINDS = ("client ok", "server ok", "unknown key", "wrong origin")


@dataclass(frozen=True)
class Mix:
    client: str
    server: str

    def record(self, rid: str, n: int) -> Record:
        kind = KINDS[n % len(KINDS)]
        endpoint, token, origin = {
            "client ok": ("client", self.client, "https://www.bench.test"),
            "server ok": ("s2s", self.server, None),
            "unknown key": ("client", "no-such-key", "https://www.bench.test"),
            "wrong origin": ("client", self.client, "https://evil.test"),
        }[kind]
        headers = [("eg-request-id", rid), ("eg-endpoint", endpoint),
                   ("eg-token", digests.digest(token)),
                   ("eg-received-at", "2026-01-01T00:00:00.000Z"), ("eg-path", "/api/v1/event")]
        if origin:
            headers.append(("eg-origin", origin))
        body = orjson.dumps({"event_type": "page", "n": n, "url": "https://www.bench.test/p"})
        return rid.encode(), body, [(k, v.encode()) for k, v in headers]

    def keys(self) -> list[dict[str, object]]:
        return [{"id": "bench-web", "client_secret": self.client,
                 "origins": ["*.bench.test"]},
                {"id": "bench-backend", "server_secret": self.server}]


async def run(bootstrap: str, events: int) -> int:
    mix = Mix(secrets.token_urlsafe(16), secrets.token_urlsafe(16))
    run_id = secrets.token_hex(3)
    records = [mix.record(f"b{run_id}-{n}", n) for n in range(events)]
    print(f"bench pipeline: {events} events per system on {bootstrap} "
          f"(mix: {', '.join(KINDS)})", flush=True)

    core_rate = decision_core_rate(mix, records)
    print(f"  decision core (pure, in-process): {core_rate:,.0f} decisions/s", flush=True)

    base_prefix, worker_prefix = f"bench{run_id}-base.", f"bench{run_id}-worker."
    for prefix in (base_prefix, worker_prefix):
        await topics.apply(bootstrap, topics.load_specs(), prefix)
    logs = cache_dir() / "bench-logs"
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.yaml"
        config.write_text(yaml.safe_dump({"api_keys": mix.keys()}))

        base = Stack(logs, bootstrap, base_prefix)
        try:
            proc = base.process("passthrough", [sys.executable, "-m",
                                                "workers.bench.passthrough", bootstrap,
                                                base_prefix])
            base_s = await timed_pass(bootstrap, base_prefix, records, proc, mix)
        finally:
            base.stop()
        print(f"  aiokafka pass-through (baseline):  {events / base_s:,.0f} events/s "
              f"({base_s:.2f} s)", flush=True)

        stack = Stack(logs, bootstrap, worker_prefix)
        try:
            proc = stack.worker(config, name="bench-worker")
            worker_s = await timed_pass(bootstrap, worker_prefix, records, proc, mix)
        finally:
            stack.stop()
    print(f"  eventguard worker:                 {events / worker_s:,.0f} events/s "
          f"({worker_s:.2f} s)", flush=True)
    print(f"  ratio worker / pass-through:       {base_s / worker_s:.2f}")
    return 0


def decision_core_rate(mix: Mix, records: list[Record], seconds: float = 1.0) -> float:
    state = AuthState()
    state.keys.put(KeyRecord("bench-web", client_secrets=(SecretRef(digests.digest(mix.client)),),
                             origins=("*.bench.test",)))
    state.keys.put(KeyRecord("bench-backend",
                             server_secrets=(SecretRef(digests.digest(mix.server)),)))
    requests = [RawRequest.from_record(k, v, h, "x") for k, v, h in records[:1000]]
    done, start, now = 0, time.perf_counter(), time.time()
    while time.perf_counter() - start < seconds:
        for r in requests:
            decide(r, state, now)
        done += len(requests)
    return done / (time.perf_counter() - start)


async def timed_pass(bootstrap: str, prefix: str, records: list[Record], proc: Proc,
                     mix: Mix) -> float:
    """Seconds from the first record produced until the last output is read back."""
    counter = OutputCounter(bootstrap, prefix + "audit-log")
    await counter.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                enable_idempotence=True)
    await producer.start()
    try:
        await _until_ready(producer, counter, prefix, proc, mix)
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
                       proc: Proc, mix: Mix) -> None:
    """Probe until the processor answers: a worker must have loaded its keys first."""
    for n in range(120):
        key, value, headers = mix.record(f"probe-{n}", 1)
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
