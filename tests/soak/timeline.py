"""What the key table's changelog said, and when: the truth the soak judges workers by.

A group-less reader of the changelog notes, for each record, when it saw it (wall
clock, after the broker had it) and the state it gives its key. A decision made later
than SETTLE_S after a record was seen must agree with it.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections import defaultdict

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

SETTLE_S = 1.0  # a key change takes effect on every worker within a second
PRESENT, DISABLED, ABSENT = "ok", "key_disabled", "unknown_key"  # the reason each gives


class Timeline:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.tp = bootstrap, TopicPartition(topic, 0)
        self.states: dict[str, tuple[list[float], list[str]]] = defaultdict(lambda: ([], []))
        self.ends: tuple[list[float], list[int]] = ([], [])  # when seen, end offset then
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Timeline:
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _read(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                    enable_auto_commit=False, fetch_max_wait_ms=20)
        await consumer.start()
        try:
            consumer.assign([self.tp])
            await consumer.seek_to_beginning(self.tp)
            while True:
                got = await consumer.getmany(self.tp, timeout_ms=100)
                now = time.time()
                for msg in got.get(self.tp, ()):
                    key = (msg.key or b"").decode()
                    if key.startswith("key/"):
                        times, states = self.states[key[4:]]
                        times.append(now)
                        states.append(_state(msg.value))
                    self.ends[0].append(now)
                    self.ends[1].append(msg.offset + 1)
        finally:
            await consumer.stop()

    def expected(self, key_id: str, at: float) -> str | None:
        """The reason a decision at `at` must give, or None if the key changed within
        SETTLE_S before it (either answer is right then)."""
        times, states = self.states.get(key_id, ([], []))
        i = bisect.bisect_right(times, at)
        if i and at - times[i - 1] < SETTLE_S:
            return None
        return states[i - 1] if i else ABSENT

    def end_settled(self, at: float) -> int:
        """The changelog's end offset as it was SETTLE_S before `at`."""
        times, ends = self.ends
        i = bisect.bisect_right(times, at - SETTLE_S)
        return ends[i - 1] if i else 0


def _state(value: bytes | None) -> str:
    if value is None:
        return ABSENT
    try:
        return DISABLED if orjson.loads(value).get("disabled") else PRESENT
    except (ValueError, AttributeError):
        return ABSENT
