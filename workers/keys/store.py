"""auth-config as the key CLI and the admin API see it: read it, publish Changes.

They read auth-config itself, not the table's changelog, so a change is seen
even before a worker has applied it (or while no worker runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from workers.auth.authorize import AuthState
from workers.keys import records
from workers.keys.admin import Change
from workers.keys.apply import apply
from workers.keys.view import KeyView

log = logging.getLogger(__name__)


class KeyStore:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.view = KeyView(topic)
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
            self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                              enable_idempotence=True)
            await self._producer.start()
        for key, value in records.key_changes(change.upserts, change.removals):
            await self._producer.send_and_wait(self.topic, value, key=key)
            apply(self.view.state, key.decode(), value)

    async def close(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
        if self._producer is not None:
            await self._producer.stop()
