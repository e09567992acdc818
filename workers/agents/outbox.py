"""The worker's one way to hand output records to Kafka.

An agent collects a batch's output records in an `Outputs` and hands them to the
producer with `send_all`: one record batch per topic-partition (aiokafka's
`send_batch`), instead of one `send` per record with its own future and awaits.
`send` hands over a single record. Both only enqueue. Faust flushes the producer
before it commits the raw-events offset, so an output that is enqueued is either
delivered or the event it came from is decided again. Two things break that
promise, and both end the process instead of leaving an agent dead in a live worker:
- a send that raises a non-retriable error (a retriable one is retried);
- a delivery that fails after the send returned (every record batch's delivery
  future is watched): the event may already be acked, so only an exit before the
  next commit keeps it from being lost.
The supervisor (systemd, Kubernetes, docker-compose `restart:`) starts the
worker again, and the group hands its partitions to a live worker meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import time
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from typing import Any, cast

from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

log = logging.getLogger(__name__)
EXIT_CODE = 70  # EX_SOFTWARE: the supervisor should restart the worker
RETRY_DELAYS_S = (0.05, 0.2, 0.5, 1.0, 2.0, 5.0)  # the last one repeats
_last_retry_log = 0.0


class Outputs:
    """Output records by topic, in the order they were added."""

    __slots__ = ("by_topic",)

    def __init__(self) -> None:
        self.by_topic: defaultdict[str, list[tuple[bytes, bytes]]] = defaultdict(list)

    def add(self, topic: str, key: bytes, value: bytes) -> None:
        self.by_topic[topic].append((key, value))

    def __len__(self) -> int:
        return sum(len(records) for records in self.by_topic.values())


async def send_all(producer: Any, outputs: Outputs) -> None:
    """Enqueue `outputs` on the app's producer (`app.producer`), one record batch per
    topic-partition, partitioned by key exactly as `producer.send` partitions them."""
    kafka = producer._ensure_producer()  # Faust's producer wraps an AIOKafkaProducer
    # These sends bypass Faust's, and so its monitor's send hooks: the worker's monitor
    # (workers/metrics/faust_sensor.py) counts records per topic, and times the whole
    # batch once, by the delivery of its last record batch.
    monitor = getattr(getattr(producer, "app", None), "monitor", None)
    sent = getattr(monitor, "on_outputs_sent", None)
    started = time.monotonic()
    last: asyncio.Future[object] | None = None
    hashes: dict[bytes, int] = {}  # a request's decision and audit records share the key
    for topic, records in outputs.by_topic.items():
        partition_of = await _partitioner(kafka, topic, hashes)
        by_partition: defaultdict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
        for record in records:
            by_partition[partition_of(record[0])].append(record)
        for partition, part in by_partition.items():
            builder = kafka.create_batch()
            for key, value in part:
                if builder.append(timestamp=None, key=key, value=value) is None:  # full
                    await _submit(kafka, builder, topic, partition)
                    builder = kafka.create_batch()
                    builder.append(timestamp=None, key=key, value=value)  # empty: fits
            last = await _submit(kafka, builder, topic, partition)
        if sent is not None:
            sent(topic, len(records))
    delivered = getattr(monitor, "on_outputs_delivered", None)
    if last is not None and delivered is not None:
        last.add_done_callback(partial(_timed, delivered, started))


async def _partitioner(kafka: Any, topic: str, hashes: dict[bytes, int]) -> Any:
    attempt = 0
    while True:
        try:
            await kafka.client._wait_on_metadata(topic)
            break
        except Exception as exc:
            await _retry_or_die(topic, exc, attempt)
            attempt += 1
    metadata = kafka.client.cluster
    every: list[int] = sorted(metadata.partitions_for_topic(topic))
    if type(kafka._partitioner) is not DefaultPartitioner:
        available = list(metadata.available_partitions_for_topic(topic))
        return lambda key: kafka._partitioner(key, every, available)
    count = len(every)

    def partition_of(key: bytes) -> int:  # DefaultPartitioner, hashing each key once
        hashed = hashes.get(key)
        if hashed is None:
            hashed = hashes[key] = murmur2(key) & 0x7FFFFFFF
        return every[hashed % count]

    return partition_of


async def _submit(kafka: Any, builder: Any, topic: str, partition: int
                  ) -> asyncio.Future[object]:
    """Hand one record batch to aiokafka, retrying retriable errors; watch its delivery."""
    attempt = 0
    while True:
        try:
            delivery = await kafka.send_batch(builder, topic, partition=partition)
        except Exception as exc:
            await _retry_or_die(topic, exc, attempt)
            attempt += 1
            continue
        done = cast("asyncio.Future[object]", delivery)
        done.add_done_callback(_delivered)
        return done


async def _retry_or_die(topic: str, exc: Exception, attempt: int) -> None:
    cause = exc.__cause__ if isinstance(exc.__cause__, KafkaError) else exc
    if not getattr(cause, "retriable", False):
        die(f"Kafka refused a record for {topic} ({_name(cause)})")
    _log_retry(topic, cause)
    await asyncio.sleep(RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)])


_M = 0x5BD1E995
_WORDS = [struct.Struct(f"<{n}I") for n in range(64)]


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (aiokafka.partitioner.murmur2, same results), reading 4-byte
    words at once: about 3x faster on request ids."""
    length = len(data)
    h = 0x9747B28C ^ length
    count = length // 4
    words = (_WORDS[count] if count < 64 else struct.Struct(f"<{count}I")).unpack_from(data)
    for k in words:
        k = (k * _M) & 0xFFFFFFFF
        k ^= k >> 24
        h = ((h * _M) & 0xFFFFFFFF) ^ ((k * _M) & 0xFFFFFFFF)
    tail = length & ~3
    extra = length & 3
    if extra >= 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * _M) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * _M) & 0xFFFFFFFF
    return h ^ (h >> 15)


def _delivered(delivery: asyncio.Future[object]) -> None:
    if delivery.cancelled():
        return  # the producer is stopping: nothing after this is committed
    exc = delivery.exception()
    if exc is not None:
        die(f"an output record was not delivered ({_name(exc)})")


def _timed(delivered: Callable[[float], None], started: float,
           delivery: asyncio.Future[object]) -> None:
    if not delivery.cancelled() and delivery.exception() is None:
        delivered(started)


def die(reason: str) -> None:
    """Exit now, before Faust commits offsets whose outputs may be missing."""
    log.critical("worker: %s. Exiting with code %d so that the supervisor restarts it; "
                 "events since the last commit will be decided again.", reason, EXIT_CODE)
    logging.shutdown()
    os._exit(EXIT_CODE)


def _log_retry(topic: str, exc: BaseException) -> None:
    global _last_retry_log
    now = time.monotonic()
    if now - _last_retry_log >= 10.0:  # one line per 10 s while Kafka is away
        _last_retry_log = now
        log.warning("worker: sending to %s failed (%s); retrying", topic, _name(exc))


def _name(exc: BaseException) -> str:
    return type(exc).__name__
