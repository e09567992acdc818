"""CommitBeforeRevoke: a rebalance commits the acked offsets of the partitions it takes
away. Plain Faust forgets them first, with the plain library beside the fix.

Faust's own revoke handler (App._on_partitions_revoked) runs for real here, and with it
its commit (`wait_empty`); only what would reach Kafka is stubbed: the commit request,
the producer's flush and the pause of the consumer thread."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import faust
from faust.transport.drivers.aiokafka import Consumer as PlainConsumer
from faust.types import TP, Message

from workers.kafka.commit_before_revoke import CommitBeforeRevoke

TP0 = TP("raw-events", 0)


async def _revoke(cls: type[PlainConsumer]) -> tuple[list[dict[TP, int]], int]:
    """Offsets 0-2 of TP0 read and acked, not yet committed, then TP0 revoked. Returns
    what reached Kafka's commit during the revoke, and how often the consumer's commit
    ran (each time through Faust's whole commit path)."""
    app = faust.App("revoke-test", broker="kafka://127.0.0.1:1", store="memory://")
    app.transport.Consumer = cls  # type: ignore[misc]
    assert type(app.consumer) is cls
    consumer: Any = app.consumer
    committed: list[dict[TP, int]] = []

    async def commit_request(offsets: dict[TP, int]) -> bool:
        committed.append(dict(offsets))
        return True

    async def flushed() -> None:
        return None

    commits = 0
    commit = consumer.commit

    async def counted_commit(*args: Any, **kwargs: Any) -> bool:
        nonlocal commits
        commits += 1
        return bool(await commit(*args, **kwargs))

    cast(Any, app.topics)._acking_topics.add(TP0.topic)  # what subscribing an agent's topic does
    consumer._commit = commit_request
    consumer.commit = counted_commit
    consumer.assignment = lambda: {TP0}
    consumer.pause_partitions = lambda tps: None
    app.producer.flush = flushed  # type: ignore[method-assign]
    for offset in (0, 1, 2):
        message = Message(TP0.topic, TP0.partition, offset, 0.0, 0, [], None, b"", None)
        consumer.track_message(message)
        assert consumer.ack(message)
    await consumer.on_partitions_revoked({TP0})
    assert TP0 not in consumer._acked  # either way: forgotten once revoked
    return committed, commits


def test_plain_faust_forgets_the_acked_offsets_of_revoked_partitions_before_its_commit(
) -> None:
    # faust-streaming #502: when this fails, Faust commits them itself and
    # CommitBeforeRevoke can go (workers/kafka/fixes.py).
    committed, commits = asyncio.run(_revoke(PlainConsumer))
    assert commits >= 1  # the app's revoke handler commits (wait_empty)...
    assert committed == []  # ...but the acked offsets were already gone


def test_a_rebalance_commits_the_acked_offsets_before_faust_forgets_them() -> None:
    committed, _ = asyncio.run(_revoke(CommitBeforeRevoke))
    assert committed == [{TP0: 3}]  # the next offset to read: nothing decided again
