"""auth-config as the key CLI and the admin API see it: read it, publish Changes.

They read auth-config itself, not the key table, so a change is seen even before a
worker has applied it (or while no worker runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from workers import kafka_security, topic_access
from workers.auth.authorize import AuthState
from workers.keys import records
from workers.keys.admin import Change
from workers.keys.apply import apply

log = logging.getLogger(__name__)


class TopicReader:
    """A one-partition compacted topic of key records (auth-config, or the key table's
    changelog), read whole into an AuthState by a group-less consumer: for processes
    that are not workers."""

    def __init__(self, topic: str, options: dict[str, Any] | None = None,
                 wait: bool = True) -> None:
        self.topic = topic
        # The key table's changelog appears when a worker first starts: wait for it.
        # auth-config is made by `topics apply`: not seeing it means not being allowed to
        # (an ACL hides it), which the first read then says.
        self.wait = wait
        # aiokafka's security options: this process's identity unless another is given
        self.options = kafka_security.options() if options is None else options
        self.state = AuthState()
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
        if not self.wait:
            await topic_access.check(bootstrap, [self.topic], self.options)
        consumer = AIOKafkaConsumer(
            **self.options, bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
            fetch_max_wait_ms=50, auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            tp = TopicPartition(self.topic, 0)
            while self.wait and self.topic not in await consumer.topics():
                await asyncio.sleep(0.2)  # a worker creates the key table's changelog
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            while True:
                if not self.ready.is_set() and await consumer.position(tp) >= end:
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


class KeyStore:
    """auth-config, as the key admin principal (`kafka_security.key_admin_options`)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.view = TopicReader(topic, kafka_security.key_admin_options(), wait=False)
        self._producer: AIOKafkaProducer | None = None
        self._follower: asyncio.Task[None] | None = None

    @property
    def state(self) -> AuthState:
        return self.view.state

    async def load(self) -> AuthState:
        """Read auth-config to its current end, once."""
        await self.view.run(self.bootstrap, follow=False)
        return self.view.state

    async def follow(self) -> None:
        """Keep the state current in the background (a long-running process)."""
        if self._follower is None:
            self._follower = asyncio.create_task(self._follow_forever())
        await self.view.ready.wait()

    async def _follow_forever(self) -> None:
        while True:
            try:
                await self.view.run(self.bootstrap)
            except (KafkaError, OSError) as exc:
                # Re-reading from the start is safe: applying a record is idempotent.
                log.warning("auth-config: reading failed (%s); retrying in 2 s",
                            type(exc).__name__)
                await asyncio.sleep(2)

    async def publish(self, change: Change) -> None:
        """Write the change to auth-config (acks=all) and apply it here at once, so a
        next operation sees it before the record comes back from Kafka."""
        if self._producer is None:
            self._producer = AIOKafkaProducer(**self.view.options, acks="all",
                                              bootstrap_servers=self.bootstrap,
                                              enable_idempotence=True)
            await self._producer.start()
        for key, value in change.records():
            await self._producer.send_and_wait(self.topic, value, key=key)
            apply(self.view.state, key.decode(), value)

    async def close(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
        if self._producer is not None:
            await self._producer.stop()
