"""Starting a benchmark's follower of a topic the benchmark has just created."""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaConsumer

FETCHER = logging.getLogger("aiokafka.consumer.fetcher")


async def start_at_end(consumer: AIOKafkaConsumer) -> None:
    """Start `consumer` at the end of its topics.

    The topics are a second old: their leader can still refuse ListOffsets
    (NotLeaderForPartition) after the metadata names it. aiokafka retries until it
    answers, but logs each refusal as an error in the middle of the benchmark's output."""
    await consumer.start()
    level = FETCHER.level
    FETCHER.setLevel(logging.CRITICAL)
    try:
        await consumer.seek_to_end()
    finally:
        FETCHER.setLevel(level)
