"""A revocation whose changelog record is dropped by the consumer: every worker still
applies it, and none decides with the revoked key once it knows its keys are old.

Deterministic: tests/faults/sitecustomize.py throws away, in each worker process, the
first fetched batch of the key table's changelog that holds the revoked key's tombstone,
after aiokafka moved its position past it: what Faust does on a flow stop or a cleared
changelog queue (issue 17). On 2b61f3c both workers answered `ok` for the revoked key
until they were restarted.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import datetime

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from tests import faults
from tests.chaos.conftest import ChaosStack
from tests.integration.conftest import publish_config
from workers.auth import secrets
from workers.cli.decisions import Collector, partitions
from workers.devstack.processes import Proc
from workers.keys.freshness import HOLD_AFTER_S

pytestmark = pytest.mark.chaos
VICTIM = "key/victim"
# The revocation must reach every partition's decisions within this: the drop is noticed
# STALE_AFTER_S after the end offset was seen, then one re-seek and one fetch.
HEALED_WITHIN_S = 20.0
# Past this after the revocation was acknowledged, no partition may accept the key:
# HOLD_AFTER_S, one end-offset check, and room for a busy machine.
NO_OK_AFTER_S = HOLD_AFTER_S + 2.0


def test_a_dropped_tombstone_is_applied_or_decisions_wait(chaos_stack: ChaosStack) -> None:
    cs = chaos_stack
    fault = faults.env(drop_tombstone=VICTIM)
    workers = [cs.stack.worker(cs.config, name=f"worker-{i}", env=fault) for i in (1, 2)]
    cs.ingest()
    asyncio.run(cs.wait_deciding(workers, distinct_workers=2))
    asyncio.run(_revoke_and_watch(cs, workers))


async def _revoke_and_watch(cs: ChaosStack, workers: list[Proc]) -> None:
    secret = secrets.generate()
    record: dict[str, object] = {"id": "victim", "server_secrets": [secrets.digest(secret)]}
    await publish_config(cs.bootstrap, cs.prefix, VICTIM, record)
    raw = cs.prefix + "raw-events"
    parts = await partitions(cs.bootstrap, raw)
    async with cs.collector(from_beginning=False) as col:
        sender = _Sender(cs, raw, secrets.digest(secret))
        # Every partition accepts the key first, so both workers hold it.
        deadline = time.monotonic() + 60
        while not all(sender.reasons(col, p, "ok") for p in parts):
            assert time.monotonic() < deadline, "the key was never accepted everywhere"
            await sender.round(parts)
            await asyncio.sleep(0.3)
        await publish_config(cs.bootstrap, cs.prefix, VICTIM, None)
        revoked_at = time.time()
        since = len(sender.sent)
        deadline = time.monotonic() + HEALED_WITHIN_S
        while True:
            await sender.round(parts)
            await asyncio.sleep(0.3)
            if all(sender.reasons(col, p, "unknown_key", since) for p in parts):
                break
            for w in workers:
                assert w.alive(), f"{w.name} exited:\n{w.tail()}"
            assert time.monotonic() < deadline, (
                f"the revoked key was still accepted {HEALED_WITHIN_S:.0f} s later: "
                f"{sender.summary(col, since)}")
        await sender.round(parts)
        await col.wait(lambda: all(col.decided(r) for r, _ in sender.sent), timeout_s=30)
    late_ok = [(rid, a["ts"]) for rid, _ in sender.sent[since:]
               for a in col.by_id.get(rid, {}).get("audit-log", [])
               if a["reason"] == "ok" and _epoch(a["ts"]) > revoked_at + NO_OK_AFTER_S]
    print(f"\n[drop] revoked at {revoked_at:.3f}; after it: {sender.summary(col, since)}")
    assert not late_ok, f"accepted after the revocation: {late_ok[:5]}"
    for w in workers:
        log = cs.log_text(w.name)
        assert "FAULT: dropped" in log, f"{w.name}: the fault never fired"
        assert "key table: stalled at offset" in log, f"{w.name}: the drop went unnoticed"
        assert "key table: current again" in log
        assert await _stalls(w) == 1.0


class _Sender:
    """One signed-off raw-events record per partition per round, as any producer may write."""

    def __init__(self, cs: ChaosStack, topic: str, token: str) -> None:
        self.cs, self.topic, self.token = cs, topic, token
        self.sent: list[tuple[str, int]] = []

    async def round(self, parts: list[int]) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.cs.bootstrap, acks="all")
        await producer.start()
        try:
            for p in parts:
                rid = f"drop-{len(self.sent)}-p{p}"
                headers = [("eg-request-id", rid.encode()), ("eg-endpoint", b"s2s"),
                           ("eg-token", self.token.encode())]
                await producer.send_and_wait(self.topic, b'{"event_type":"k"}',
                                             key=rid.encode(), partition=p, headers=headers)
                self.sent.append((rid, p))
        finally:
            await producer.stop()

    def reasons(self, col: Collector, partition: int, want: str, since: int = 0) -> bool:
        """A record sent to `partition` (from the `since`-th on) was decided with `want`."""
        return any(a["reason"] == want for rid, p in self.sent[since:] if p == partition
                   for a in col.by_id.get(rid, {}).get("audit-log", []))

    def summary(self, col: Collector, since: int) -> dict[int, dict[str, int]]:
        by_id = col.by_id
        out: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for rid, p in self.sent[since:]:
            for a in by_id.get(rid, {}).get("audit-log", []):
                out[p][a["reason"]] += 1
        return {p: dict(v) for p, v in out.items()}


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


async def _stalls(worker: Proc) -> float:
    async with aiohttp.ClientSession() as s, s.get(worker.url + "/metrics") as r:
        text = await r.text()
    for line in text.splitlines():
        if line.startswith("eventguard_key_table_stalls_total "):
            return float(line.split()[1])
    raise AssertionError("no eventguard_key_table_stalls_total on /metrics")
