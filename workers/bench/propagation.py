"""`eventguard bench propagation`: how fast a key change reaches every worker.

Two worker processes run on their own topics. Each trial publishes a new key to
auth-config, then sends events that use it to a raw-events partition of each
worker every 20 ms, until each worker accepts one; then it publishes the key's
tombstone and does the same until each worker rejects one. The time from
publishing to that first decision, read back from audit-log, is one sample per
worker and change.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import orjson
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from workers import kafka_security, topics
from workers.auth import secrets as digests
from workers.auth.keys import KeyRecord, SecretRef
from workers.bench.follow import start_at_end
from workers.devstack.processes import Stack
from workers.keys import records
from workers.paths import cache_dir

PARTITIONS = 4
TICK_S = 0.02


class Audit:
    """Follows audit-log: request id -> (reason, worker), and raw-events partition -> worker.

    An audit record lands on the audit-log partition of its request id's hash, not on the
    raw-events partition it was decided from: a probe's raw-events partition is what the
    bench sent it to (`sent_to`)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(topic, **kafka_security.options(),
                                         bootstrap_servers=bootstrap, group_id=None,
                                         auto_offset_reset="latest", fetch_max_wait_ms=10)
        self.seen: dict[str, tuple[str, str, float]] = {}
        self.owner: dict[int, str] = {}
        self.sent_to: dict[str, int] = {}
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await start_at_end(self.consumer)
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=50)
            now = time.perf_counter()
            for msgs in batches.values():
                for m in msgs:
                    value = orjson.loads(m.value)
                    rid = value["request_id"]
                    self.seen[rid] = (value["reason"], value["worker"], now)
                    if rid in self.sent_to:
                        self.owner[self.sent_to[rid]] = value["worker"]

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
        await self.consumer.stop()


async def run(bootstrap: str, trials: int) -> int:
    run_id = secrets.token_hex(3)
    prefix = f"bench{run_id}-prop."
    await topics.apply(bootstrap, topics.load_specs(), prefix)
    base = secrets.token_urlsafe(16)
    logs = cache_dir() / "bench-logs"
    stack = Stack(logs, bootstrap, prefix)
    audit = Audit(bootstrap, prefix + "audit-log")
    producer = AIOKafkaProducer(**kafka_security.options(),
                                bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    print(f"bench propagation: {trials} trials, 2 workers, on {bootstrap}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.yaml"
        config.write_text(yaml.safe_dump({"api_keys": [{"id": "base", "server_secret": base}],
                                          "server": {"api_keys_reload_sec": 60}}))
        try:
            for n in (1, 2):
                stack.worker(config, name=f"prop-worker-{n}")
            await audit.start()
            await producer.start()
            owners = await _partition_owners(producer, audit, prefix, base)
            print(f"  workers ready; partitions by worker: {owners}", flush=True)
            samples: dict[str, list[float]] = defaultdict(list)
            for n in range(trials):
                secret = secrets.token_urlsafe(16)
                key_id = f"prop{n}"
                record = KeyRecord(key_id, server_secrets=(SecretRef(digests.digest(secret)),),
                                   source="bench")
                k, v = records.encode_key(record)
                for change, value, want in (("add", v, "ok"), ("revoke", None, "unknown_key")):
                    started = time.perf_counter()
                    await producer.send_and_wait(prefix + "auth-config", value, key=k)
                    got = await _until_decided(producer, audit, prefix, secret, owners, want,
                                               started, f"{key_id}-{change}")
                    for latency in got.values():
                        samples[change].append(latency)
        finally:
            await producer.stop()
            await audit.stop()
            stack.stop()
            await topics.delete_prefixed(bootstrap, prefix)
    for change, values in samples.items():
        q = statistics.quantiles(values, n=100, method="inclusive")
        print(f"  {change:<7} n={len(values):<3} p50 {q[49] * 1000:6.0f} ms   "
              f"p99 {q[98] * 1000:6.0f} ms   max {max(values) * 1000:6.0f} ms")
    return 0


async def _send(producer: AIOKafkaProducer, prefix: str, rid: str, secret: str,
                partition: int) -> None:
    headers = [("eg-request-id", rid.encode()), ("eg-endpoint", b"s2s"),
               ("eg-token", digests.digest(secret).encode())]
    await producer.send(prefix + "raw-events", b'{"event_type":"page"}', key=rid.encode(),
                        partition=partition, headers=headers)


async def _probe(producer: AIOKafkaProducer, audit: Audit, prefix: str, rid: str, secret: str,
                 partition: int) -> None:
    audit.sent_to[rid] = partition
    await _send(producer, prefix, rid, secret, partition)


async def _partition_owners(producer: AIOKafkaProducer, audit: Audit, prefix: str,
                            base: str, timeout_s: float = 120.0) -> dict[str, list[int]]:
    """Which worker decides each raw-events partition, once both workers decide."""
    deadline = time.monotonic() + timeout_s
    n = 0
    while time.monotonic() < deadline:
        for p in range(PARTITIONS):
            n += 1
            await _probe(producer, audit, prefix, f"probe-{n}", base, p)
        await asyncio.sleep(0.5)
        if len(audit.owner) == PARTITIONS and len(set(audit.owner.values())) == 2:
            await asyncio.sleep(2)  # let a last rebalance settle, then read owners again
            audit.owner.clear()
            while len(audit.owner) < PARTITIONS and time.monotonic() < deadline:
                for p in range(PARTITIONS):
                    n += 1
                    await _probe(producer, audit, prefix, f"probe-{n}", base, p)
                await asyncio.sleep(0.3)
            if len(set(audit.owner.values())) == 2:
                owners: dict[str, list[int]] = defaultdict(list)
                for p, w in sorted(audit.owner.items()):
                    owners[w].append(p)
                return dict(owners)
    raise RuntimeError("the two workers did not both start deciding; see .cache/bench-logs/")


async def _until_decided(producer: AIOKafkaProducer, audit: Audit, prefix: str, secret: str,
                         owners: dict[str, list[int]], want: str, started: float, tag: str,
                         timeout_s: float = 30.0) -> dict[str, float]:
    """Seconds from `started` to each worker's first decision `want` for `secret`."""
    first: dict[str, float] = {}
    sent: list[str] = []
    n = 0
    while len(first) < len(owners):
        if time.perf_counter() - started > timeout_s:
            raise TimeoutError(f"{tag}: no {want!r} from {set(owners) - set(first)}")
        for worker, partitions in owners.items():
            if worker not in first:
                n += 1
                rid = f"{tag}-{n}"
                sent.append(rid)
                await _send(producer, prefix, rid, secret, partitions[0])
        await asyncio.sleep(TICK_S)
        for rid in sent:
            hit = audit.seen.get(rid)
            if hit and hit[0] == want and hit[1] not in first:
                first[hit[1]] = hit[2] - started
    return first
