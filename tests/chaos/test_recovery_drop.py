"""A table recovery that loses a changelog fetch is re-sought and completes: a starting
worker's key table, and a usage process whose standby partitions became active.

Deterministic: tests/faults/sitecustomize.py throws away the first fetched batch of the
key table's changelog in each consumer of the starting worker, after aiokafka moved past
it, as Faust does when the flow stops mid-fetch (issue 17). Faust's recovery then waits
for those records for ever; on 2b61f3c the worker never decided. Here the recovery
watchdog re-seeks the partition, and the key reader re-seeks its own.
"""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests import faults
from tests.chaos.conftest import ChaosStack
from tests.chaos.test_usage import holds_partitions, until
from workers.devstack.processes import Proc
from workers.usage import client as usage_client
from workers.usage.tally import Tally

pytestmark = pytest.mark.chaos


def test_a_recovery_that_lost_its_fetch_is_re_sought(chaos_stack: ChaosStack) -> None:
    cs = chaos_stack
    first = cs.worker("worker-1")
    cs.ingest()
    asyncio.run(cs.wait_deciding([first]))  # the changelog now holds the config's keys
    first.stop()
    faulty = cs.stack.worker(cs.config, name="worker-2",
                             env=faults.env(drop_first_fetch="-keys-changelog"))
    asyncio.run(cs.wait_deciding([faulty], timeout_s=90))
    log = cs.log_text("worker-2")
    assert log.count("FAULT: dropped") >= 2, "the fault did not fire in both readers"
    assert "recovery watchdog: " in log and "(active recovery)" in log, log[-3000:]
    assert "key table: stalled at offset" in log


def test_a_standby_turned_active_whose_re_read_was_lost_is_re_sought(
        chaos_stack: ChaosStack) -> None:
    """Two usage processes, each the standby of the other's partitions; one stops, and the
    other's recovery reads its former standby partitions again from 0. The first of those
    re-reads is thrown away (EG_FAULT_DROP_REREAD). CI of stop 24 saw this recovery wait
    120 s and more: the watchdog judged the partition by its old standby offset, at the
    end, and saw no stall. Now it is re-sought, the process gets ready, and every count is
    there."""
    cs = chaos_stack
    a = cs.usage("usage-a")
    asyncio.run(cs.wait_ready(a))
    b = cs.stack.usage(cs.config, name="usage-b", env=faults.env(drop_reread="-changelog"))
    want = {f"key-{i:02d}": {"ok": i + 1, "origin_not_allowed": 1} for i in range(16)}

    async def go() -> None:
        await until("usage-a and usage-b share the partitions",
                    lambda: both_hold_partitions(a, b), timeout_s=90)
        await cs.wait_ready(b)
        await send_deltas(cs, want)
        await until("the counts on both usage processes", lambda: counted(a.url, want),
                    timeout_s=90)
        await asyncio.sleep(5.0)  # usage-b's standbys follow usage-a's changelogs
        cs.mark("usage-a", "SIGTERM")
        a.stop()
        took = await cs.wait_ready(b, timeout_s=90)
        print(f"[recovery-drop] usage-b ready {took:.1f}s after usage-a stopped")
        assert await counted(b.url, want), "usage-b restored other counts"

    asyncio.run(go())
    log = cs.log_text("usage-b")
    assert "FAULT: dropped" in log, "the fault never fired: no standby was read again"
    assert "recovery watchdog: " in log and "(active recovery)" in log, log[-3000:]


async def send_deltas(cs: ChaosStack, want: dict[str, dict[str, int]]) -> None:
    """Usage deltas as the tally writes them, for keys spread over every partition."""
    tally = Tally(known=lambda key: True)
    now_ms = int(time.time() * 1000)
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_ms / 1000))
    for key, reasons in want.items():
        for reason, n in reasons.items():
            decision = "accepted" if reason == "ok" else "rejected"
            for _ in range(n):
                tally.add(orjson.dumps({"key_id": key, "reason": reason, "ts": ts,
                                        "decision": decision}), now_ms)
    producer = AIOKafkaProducer(bootstrap_servers=cs.bootstrap, acks="all")
    await producer.start()
    try:
        topic = cs.prefix + "eventguard-usage-deltas"
        sent = [await producer.send_and_wait(topic, value, key=key)
                for key, value in tally.deltas()]
        partitions = {meta.partition for meta in sent}
        assert partitions == set(range(4)), f"the keys fell on partitions {partitions} only"
    finally:
        await producer.stop()


async def counted(url: str, want: dict[str, dict[str, int]]) -> bool:
    for key, reasons in want.items():
        try:
            body = await usage_client.fetch(url, key)
        except usage_client.Unavailable:
            return False
        if body["totals"] != reasons:
            return False
    return True


async def both_hold_partitions(a: Proc, b: Proc) -> bool:
    return await holds_partitions(a) and await holds_partitions(b)

