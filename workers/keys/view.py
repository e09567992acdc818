"""A complete, live read view of the key table, for one process.

The table's changelog (auth-state) has one partition. Each worker reads all of
it with its own group-less consumer, from the beginning, and keeps reading, so
every worker sees every key within a fetch interval whatever partitions it was
assigned (see docs/architecture.md, "The key table").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from workers.auth.authorize import AuthState
from workers.keys import records
from workers.keys.apply import apply

log = logging.getLogger(__name__)


class KeyView:
    def __init__(self, topic: str, state: AuthState | None = None) -> None:
        self.topic = topic
        self.state = state or AuthState()
        self.ready = asyncio.Event()
        self.changed = asyncio.Condition()

    def on_record(self, key: bytes | None, value: bytes | None) -> None:
        record_key = (key or b"").decode("utf-8", "replace")
        try:
            apply(self.state, record_key, value)
        except records.InvalidRecord as exc:
            log.warning("%s: skipped a record: %s", self.topic, exc)

    async def run(self, bootstrap: str, follow: bool = True) -> None:
        """Read the topic from the beginning; with `follow`, keep reading forever."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
            fetch_max_wait_ms=50, auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            tp = TopicPartition(self.topic, 0)
            while self.topic not in await consumer.topics():
                await asyncio.sleep(0.2)  # Faust creates the changelog at start-up
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            while True:
                if not self.ready.is_set() and await consumer.position(tp) >= end:
                    log.info("%s: %d keys loaded", self.topic, len(self.state.keys))
                    self.ready.set()
                    async with self.changed:
                        self.changed.notify_all()
                    if not follow:
                        return
                batches = await consumer.getmany(tp, timeout_ms=200, max_records=1000)
                for msg in batches.get(tp, []):
                    self.on_record(msg.key, msg.value)
                if batches:
                    async with self.changed:
                        self.changed.notify_all()
        finally:
            await consumer.stop()

    async def wait_for(self, predicate: Callable[[AuthState], bool], timeout: float) -> bool:
        """Wait until `predicate(state)` holds; False on timeout."""

        async def until() -> None:
            async with self.changed:
                await self.changed.wait_for(lambda: self.ready.is_set() and predicate(self.state))

        try:
            await asyncio.wait_for(until(), timeout)
        except TimeoutError:
            return False
        return True
