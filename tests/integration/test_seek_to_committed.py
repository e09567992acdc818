"""_ConsumerThread._seek_to_committed (workers/kafka/eager_drain.py) on the real broker: a
raw-events partition that the group never committed goes back to where the reset policy
starts it; plain aiokafka leaves it where its fetcher got to. Side by side, on the same
records and committed offsets."""

from __future__ import annotations

import asyncio
import secrets
from types import SimpleNamespace as NS
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.integration.conftest import PREFIX
from workers import topics
from workers.kafka import eager_drain
from workers.kafka.eager_drain import _ConsumerThread

PER_PARTITION = 5
COMMITTED = 3  # partition 1's committed offset; partition 0 has none


def _prefix() -> str:
    return f"{PREFIX.rstrip('.')}-seek{secrets.token_hex(3)}."


async def _positions(bootstrap: str, prefix: str, seek: str
                     ) -> tuple[dict[int, Any], dict[int, int]]:
    """Partitions 0 and 1 of `prefix`'s raw-events read to their end, then sought to the
    committed offsets by `seek` ("plain": aiokafka's; "ours": _ConsumerThread's).
    Returns the committed offsets and the positions afterwards, by partition."""
    await topics.apply(bootstrap, [s for s in topics.load_specs() if s.name == "raw-events"],
                       prefix)
    topic = prefix + "raw-events"
    tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for tp in tps:
            for n in range(PER_PARTITION):
                await producer.send_and_wait(topic, b"{}", key=b"%d" % n, partition=tp.partition)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=prefix + "group",
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.commit({tps[1]: COMMITTED})
        read = 0  # partition 0 from the start ("earliest"), partition 1 from COMMITTED
        async with asyncio.timeout(30):
            while read < 2 * PER_PARTITION - COMMITTED:  # the fetcher got to both ends
                read += sum(len(r) for r in (await consumer.getmany(timeout_ms=500)).values())
        assert [await consumer.position(tp) for tp in tps] == [PER_PARTITION] * 2
        if seek == "plain":
            committed = await consumer.seek_to_committed()
        else:
            thread = NS(_ensure_consumer=lambda: consumer)
            committed = await _ConsumerThread._seek_to_committed(thread)  # type: ignore[arg-type]
        async with asyncio.timeout(30):
            positions = {tp.partition: await consumer.position(tp) for tp in tps}
        return {tp.partition: offset for tp, offset in committed.items()}, positions
    finally:
        await consumer.stop()


def test_plain_aiokafka_leaves_a_partition_without_a_committed_offset_where_it_got_to(
        bootstrap: str) -> None:
    # When this fails, aiokafka moves such a partition itself, and the reset in
    # _ConsumerThread._seek_to_committed is no longer needed (workers/kafka/fixes.py).
    committed, positions = asyncio.run(_positions(bootstrap, _prefix(), "plain"))
    assert committed == {0: None, 1: COMMITTED}
    assert positions == {0: PER_PARTITION, 1: COMMITTED}  # 0: past records never decided


def test_a_raw_events_partition_without_a_committed_offset_goes_back_to_the_reset_policy(
        bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = _prefix()
    # As workers/app.py adds its raw-events topic.
    monkeypatch.setattr(eager_drain, "RESET_WHEN_UNCOMMITTED", {prefix + "raw-events"})
    committed, positions = asyncio.run(_positions(bootstrap, prefix, "ours"))
    assert committed == {0: None, 1: COMMITTED}
    assert positions == {0: 0, 1: COMMITTED}  # 0: "earliest", read again

