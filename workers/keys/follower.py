"""Every worker's reader of the key table's changelog: the only feed of its decision state.

Faust reads the GlobalTable's changelog with its own consumer, and that consumer can throw
fetched records away after aiokafka moved its position past them: on a flow stop, a
generation change, a partition missing from `active_partitions`, a cleared
`changelog_queue` (../shared/KAFKA-AND-FAUST-NOTES.md, "How Faust can skip changelog
records"). Nothing rewinds the partition afterwards, so a revocation written during a
rebalance stayed unseen until a restart, while the lag read 0. This reader has none of
those paths: a group-less aiokafka consumer that is assigned the one partition, never
paused, never cleared, and applies every record it is handed, in order, before it asks
for more. The Faust table stays the durable store that `apply_config` writes.

It also refuses to be trusted blindly (workers/keys/freshness.py): it asks the broker for
the changelog's end offset every END_CHECK_S, and `current` is cleared, so decisions
wait, as soon as an end offset it was shown a second ago is not applied. Stuck for
STALE_AFTER_S: one line, a counted stall, a re-seek to the first record not applied.
Still stuck: the process exits 70 and the supervisor restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from workers import kafka_security
from workers.keys.freshness import Freshness, Step

log = logging.getLogger(__name__)
END_CHECK_S = 0.25  # one ListOffsets request to the partition's leader
FETCH_WAIT_MS = 50  # a key change is fetched within this of reaching the broker
MAX_RECORDS = 2000  # applied between two looks at the clock


class KeyFollower:
    def __init__(self, topic: str, on_record: Callable[[bytes | None, bytes | None], None],
                 size: Callable[[], int], clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.tp = TopicPartition(topic, 0)
        self.on_record = on_record
        self.size = size  # keys held, for the log line once loaded
        self.die: Callable[[str], None] = _no_exit
        self.clock = clock
        self.freshness: Freshness | None = None
        self.ready = asyncio.Event()  # loaded once: up to an end offset the broker reported
        self.current = asyncio.Event()  # decisions may use the keys now
        self._said: str | None = None

    def problem(self) -> str | None:
        """Why /ready says 503 for the key table; None when it is current."""
        fresh = self.freshness
        return "loading the key table" if fresh is None else fresh.problem(self.clock())

    @property
    def lag(self) -> int | None:
        return None if self.freshness is None else self.freshness.lag

    @property
    def position(self) -> int | None:
        """The next offset to apply."""
        return None if self.freshness is None else self.freshness.position

    @property
    def stalls(self) -> int:
        return 0 if self.freshness is None else self.freshness.stalls

    async def run(self, bootstrap: str, die: Callable[[str], None]) -> None:
        """Read for ever; `die(reason)` ends the process when the reader cannot heal."""
        self.die = die
        # auto_offset_reset "none": an offset out of range raises (and the worker exits)
        # instead of reading the log again from its start, which would bring back, for a
        # while, keys revoked later in it.
        consumer = AIOKafkaConsumer(**kafka_security.options(),
                                    bootstrap_servers=bootstrap, group_id=None,
                                    enable_auto_commit=False, fetch_max_wait_ms=FETCH_WAIT_MS,
                                    auto_offset_reset="none")
        await consumer.start()
        watcher: asyncio.Task[None] | None = None
        try:
            await self._wait_for_topic(consumer)
            consumer.assign([self.tp])
            start = (await consumer.beginning_offsets([self.tp]))[self.tp]
            consumer.seek(self.tp, start)
            fresh = self.freshness = Freshness(start, self.clock())
            watcher = asyncio.create_task(self._watch_end(consumer, fresh))
            while True:
                batches = await consumer.getmany(self.tp, timeout_ms=100,
                                                 max_records=MAX_RECORDS)
                records = batches.get(self.tp, ())
                for msg in records:
                    self.on_record(msg.key, msg.value)
                if records:
                    fresh.applied(records[-1].offset + 1, self.clock())
                if watcher.done():  # it ends only by raising: the reader cannot judge itself
                    watcher.result()
                    raise RuntimeError("the end-offset watcher stopped")
                self._act(consumer, fresh)
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await consumer.stop()

    async def _wait_for_topic(self, consumer: AIOKafkaConsumer) -> None:
        waited = False
        while self.tp.topic not in await consumer.topics():
            if not waited:
                log.info("key table: waiting for topic %s (eventguard topics apply)",
                         self.tp.topic)
                waited = True
            await asyncio.sleep(0.5)

    async def _watch_end(self, consumer: AIOKafkaConsumer, fresh: Freshness) -> None:
        while True:
            asked = self.clock()  # the answer tells how the log was then, not when it came
            try:
                ends = await consumer.end_offsets([self.tp])
            except KafkaError:
                pass  # `problem` says so once END_UNKNOWN_S passed without an answer
            else:
                fresh.saw_end(ends[self.tp], asked)
                self._act(consumer, fresh)
            await asyncio.sleep(END_CHECK_S)

    def _act(self, consumer: AIOKafkaConsumer, fresh: Freshness) -> None:
        now = self.clock()
        step = fresh.next_step(now)
        if step is Step.RESEEK:
            log.warning("key table: stalled at offset %d with %s records to go for %.1f s; "
                        "reading again from offset %d", fresh.position, fresh.lag,
                        fresh.behind_s(now), fresh.position)
            # Drops what the fetcher holds for the partition and fetches from here again.
            consumer.seek(self.tp, fresh.position)
        elif step is Step.GIVE_UP:
            self.die(f"the key table cannot be kept current: {fresh.why_give_up}")
            return
        problem = fresh.problem(now)
        if problem is None:
            if not self.ready.is_set():
                log.info("key table: %d keys loaded, current at offset %d", self.size(),
                         fresh.position)
                self.ready.set()
            self.current.set()
        else:
            self.current.clear()
        self._say(problem)

    def _say(self, problem: str | None) -> None:
        """One line when the key table falls behind after it was loaded, one when it is back."""
        if not self.ready.is_set() or (problem is None) == (self._said is None):
            return
        if problem is not None:
            log.warning("key table: not current, decisions wait: %s", problem)
        else:
            log.info("key table: current again at offset %d",
                     self.freshness.position if self.freshness else -1)
        self._said = problem


def _no_exit(reason: str) -> None:
    raise RuntimeError(reason)
