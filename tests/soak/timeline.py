"""What the key table's changelog said, and when: the truth the soak judges workers by.

A group-less reader of the changelog notes, for each record, its timestamp (when
apply_config made it: before the broker had it), when the reader saw it (after), and the
state it gives its key. A decision made before a record was made must not show it; one
made later than SETTLE_S after the record was seen must; in between, either is right.
The reader runs in a thread with an event loop of its own, so that it sees records
promptly; a worker can still see one before it does.
"""

from __future__ import annotations

import asyncio
import bisect
import threading
import time
from collections import defaultdict

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

SETTLE_S = 1.0  # a key change takes effect on every worker within a second
PRESENT, DISABLED, ABSENT = "ok", "key_disabled", "unknown_key"  # the reason each gives


class Timeline:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.tp = bootstrap, TopicPartition(topic, 0)
        # key id -> (when seen, when made, state), in changelog order
        self.states: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
        self.ends: tuple[list[float], list[int]] = ([], [])  # when seen, end offset then
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._caught_up = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._read()), daemon=True)

    async def __aenter__(self) -> Timeline:
        """Once the reader has read the changelog to its end: a record it read late would
        look newer than it is, and a worker that had applied it, stale."""
        self._thread.start()
        if not await asyncio.to_thread(self._caught_up.wait, 60):
            raise RuntimeError(f"could not read {self.tp.topic} to its end in 60 s")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await asyncio.to_thread(self._thread.join, 10)

    async def _read(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                    enable_auto_commit=False, fetch_max_wait_ms=20)
        await consumer.start()
        try:
            consumer.assign([self.tp])
            await consumer.seek_to_beginning(self.tp)
            end = (await consumer.end_offsets([self.tp]))[self.tp]
            while not self._stop.is_set():
                if await consumer.position(self.tp) >= end:
                    self._caught_up.set()
                got = await consumer.getmany(self.tp, timeout_ms=100)
                now = time.time()
                with self._lock:
                    for msg in got.get(self.tp, ()):
                        key = (msg.key or b"").decode()
                        if key.startswith("key/"):
                            made = min(now, msg.timestamp / 1000)
                            self.states[key[4:]].append((now, made, _state(msg.value)))
                        self.ends[0].append(now)
                        self.ends[1].append(msg.offset + 1)
        finally:
            await consumer.stop()

    def expected(self, key_id: str, at: float) -> str | None:
        """The reason a decision at `at` must give, or None when a record of the key may
        or may not be in effect then (either answer is right)."""
        with self._lock:
            records = self.states.get(key_id, [])
            seen = [r[0] for r in records]
            i = bisect.bisect_right(seen, at - SETTLE_S)  # records[:i] are in effect
            if i < len(records) and records[i][1] <= at:
                return None  # made before `at`, not yet seen SETTLE_S before it
            return records[i - 1][2] if i else ABSENT

    def around(self, key_id: str, at: float, span_s: float = 5.0
               ) -> list[tuple[float, float, str]]:
        """The key's records seen within `span_s` of `at`: (seen, made: seconds after `at`;
        state)."""
        with self._lock:
            return [(round(seen - at, 3), round(made - at, 3), st)
                    for seen, made, st in self.states.get(key_id, [])
                    if abs(seen - at) <= span_s]

    def end_settled(self, at: float) -> int:
        """The changelog's end offset as it was SETTLE_S before `at`."""
        with self._lock:
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
