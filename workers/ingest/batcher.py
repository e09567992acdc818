"""Records of requests that wait together, handed to aiokafka as one record batch.

Every 200 waits for its own record's ack, so records of concurrent requests can
travel together. aiokafka's `send()` costs each record a coroutine, a metadata
wait, a partitioner call, a future, a RecordMetadata and a trip through the
accumulator; here a record costs a list append and a future, and the rest is
paid once per batch (`create_batch` / `send_batch`, aiokafka's public API):

- records wait here while our last batch to their partition's leader is
  unacknowledged, and leave as one batch the moment it is: batches grow with the
  load, as in aiokafka's accumulator at linger 0, never by a timer;
- one task per busy leader sends its batches back to back (`_pump`), so a batch
  leaves in the same loop step that saw the last one acknowledged;
- a record keyed by a random request id may go to any partition, so a batch of
  them goes to one partition whose leader is free and the next batch to the next
  partition (Kafka's sticky partitioner): one large batch per produce request, not
  a few records for every partition;
- a record keyed by a nonce goes where aiokafka's partitioner puts the key, so a
  replay still meets its original;
- a batch fails as a whole at its oldest record's deadline, so no request waits
  longer than `timeout_s`, as with one `send` each.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Coroutine, Iterator
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import UnknownTopicOrPartitionError
from aiokafka.partitioner import murmur2

from workers.ingest.metadata import RawRecord

# A record, the future its request waits on, and the loop time it gives up.
Item = tuple[RawRecord, "asyncio.Future[None]", float]
Leader = int | None  # a broker id; None or -1 while a partition has no leader
Groups = dict[int, list[Item]]  # records by partition


class Batcher:
    def __init__(self, producer: AIOKafkaProducer, topic: str, timeout_s: float) -> None:
        self.producer = producer
        self.topic = topic
        self.timeout_s = timeout_s
        self._loop = asyncio.get_running_loop()
        self._pending: list[Item] = []
        self._scheduled = False
        self._busy: set[Leader] = set()  # leaders with a pump, i.e. a batch of ours in flight
        self._turn = 0  # where the next sticky partition is looked for
        self._metadata: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, record: RawRecord) -> asyncio.Future[None]:
        """A future that is done when Kafka acknowledged the record, or failed."""
        future: asyncio.Future[None] = self._loop.create_future()
        self._pending.append((record, future, self._loop.time() + self.timeout_s))
        if not self._scheduled:
            # call_soon runs after the handlers the loop already woke, so their
            # records join this batch.
            self._scheduled = True
            self._loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._scheduled = False
        for leader, groups in self._route().items():
            self._busy.add(leader)
            self._start(self._pump(leader, groups))

    async def _pump(self, leader: Leader, groups: Groups) -> None:
        try:
            while groups:
                await self._deliver(groups)
                self._busy.discard(leader)
                routed = self._route()
                groups = routed.pop(leader, {})
                self._busy.add(leader)
                for other, more in routed.items():
                    self._busy.add(other)
                    self._start(self._pump(other, more))
        finally:
            self._busy.discard(leader)

    def _route(self) -> dict[Leader, Groups]:
        """Take the waiting records whose partition's leader is free, by leader and
        partition; the rest keep waiting."""
        if not self._pending:
            return {}
        cluster = self.producer.client.cluster
        known = cluster.partitions_for_topic(self.topic)
        if not known:
            self._await_metadata()
            return {}
        partitions = list(known)  # in aiokafka's order: the partitioner indexes it
        leaders = {p: cluster.leader_for_partition(TopicPartition(self.topic, p))
                   for p in partitions}
        sticky = self._sticky(partitions, leaders)
        routed: dict[Leader, Groups] = {}
        waiting: list[Item] = []
        for item in self._pending:
            record = item[0]
            if record.random_key:
                partition = sticky
            else:
                partition = partitions[(murmur2(record.key) & 0x7FFFFFFF) % len(partitions)]
            if partition is None or leaders[partition] in self._busy:
                waiting.append(item)
            else:
                routed.setdefault(leaders[partition], {}).setdefault(partition, []).append(item)
        self._pending = waiting
        return routed

    def _sticky(self, partitions: list[int], leaders: dict[int, Leader]) -> int | None:
        """The next partition, in turn, whose leader is free."""
        led = [p for p in partitions if _led(leaders[p])] or partitions
        for n in range(len(led)):
            partition = led[(self._turn + n) % len(led)]
            if leaders[partition] not in self._busy:
                self._turn = (self._turn + n + 1) % len(led)
                return partition
        return None

    async def _deliver(self, groups: Groups) -> None:
        """Send a leader's batches and settle each record's future with its batch."""
        sent: list[tuple[asyncio.Future[Any], list[Item]]] = []
        try:
            async with asyncio.timeout_at(min(items[0][2] for items in groups.values())):
                for partition, items in groups.items():
                    for builder, part in self._builders(items):
                        delivery = await self.producer.send_batch(builder, self.topic,
                                                                  partition=partition)
                        batch = self._batch_future(partition, builder)
                        if batch is not None:
                            batch.add_done_callback(_read)
                        sent.append((delivery, part))
                for delivery, part in sent:
                    try:
                        await delivery
                    except Exception as exc:  # this batch only; the others may land
                        _fail(part, exc)
                    else:
                        _acked(part)
        except asyncio.CancelledError:
            for items in groups.values():
                for _, future, _ in items:
                    future.cancel()
            raise
        except Exception as exc:
            for items in groups.values():
                _fail(items, exc)

    def _batch_future(self, partition: int, builder: Any) -> asyncio.Future[Any] | None:
        """aiokafka's own future of the batch just sent (None: not the aiokafka we
        know). send_batch returns it under a shield; when our deadline cancels the
        shield, a late failure of the batch goes unread and asyncio logs "exception
        was never retrieved", so we read it."""
        queues = getattr(getattr(self.producer, "_message_accumulator", None), "_batches", {})
        queue = queues.get(TopicPartition(self.topic, partition))
        batch = queue[-1] if queue else None
        if getattr(batch, "_builder", None) is not builder:
            return None
        future = getattr(batch, "future", None)
        return future if isinstance(future, asyncio.Future) else None

    def _builders(self, items: list[Item]) -> Iterator[tuple[Any, list[Item]]]:
        builder, start = self.producer.create_batch(), 0
        for n, (record, _, _) in enumerate(items):
            if builder.append(timestamp=None, key=record.key, value=record.value,
                              headers=record.headers) is None:  # full
                yield builder, items[start:n]
                builder, start = self.producer.create_batch(), n
                builder.append(timestamp=None, key=record.key, value=record.value,
                               headers=record.headers)  # an empty batch takes any record
        yield builder, items[start:]

    def _await_metadata(self) -> None:
        """The topic is not in the producer's metadata yet (a topic just made, or
        gone): ask for it, for at most `timeout_s`; the records that waited for it
        then leave, or fail, by their own deadlines."""
        if self._metadata is None:
            self._metadata = self._start(self._fetch_metadata())

    async def _fetch_metadata(self) -> None:
        try:
            async with asyncio.timeout(self.timeout_s):
                if not await self.producer.partitions_for(self.topic):
                    raise UnknownTopicOrPartitionError(self.topic)
        except Exception as exc:
            items, self._pending = self._pending, []
            _fail(items, exc)
        finally:
            self._metadata = None
            self._flush()

    def _start(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = self._loop.create_task(work)
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)
        return task


def _led(leader: Leader) -> bool:
    return leader is not None and leader >= 0


def _read(batch: asyncio.Future[Any]) -> None:
    if not batch.cancelled():
        batch.exception()


def _acked(items: list[Item]) -> None:
    for _, future, _ in items:
        if not future.done():
            future.set_result(None)


def _fail(items: list[Item], exc: BaseException) -> None:
    for _, future, _ in items:
        if not future.done():
            # One copy each: a shared exception would gather every request's traceback.
            future.set_exception(copy.copy(exc))
