"""The ingest's Kafka side: an idempotent acks=all producer that (re)connects on
demand and is replaced when it breaks.

aiokafka's idempotent producer does not heal by itself after some faults: when
a broker restarts, the producer can get `OutOfOrderSequenceNumber`, after which
its sender task is gone and every later send fails at once, forever. So:

- a non-retriable error (by aiokafka's own `retriable` flag), except a record
  that is too large, closes the producer; the next request builds a new one;
- so do `MAX_SOFT_FAILURES` writes in a row that time out or fail with a
  retriable error (a producer waiting for a broker that went away);
- while Kafka cannot be reached, a new producer is tried at most every
  `RETRY_START_S`, and requests in between get 503 at once instead of waiting;
- records go to Kafka in record batches of concurrent requests (batcher.py),
  each request still answered only after its own batch's ack;
- `check()` tells /health and /ready the truth: Kafka answered a metadata
  request, raw-events has a leader for every partition, and the last writes
  did not fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from workers import kafka_security
from workers.ingest.batcher import Batcher
from workers.ingest.metadata import RawRecord
from workers.ingest.sink import Check, RecordTooLarge, SinkUnavailable, TopicMissing
from workers.log_format import detached
from workers.settings import max_record_bytes

log = logging.getLogger(__name__)

RETRY_START_S = 1.0  # between attempts to build a producer while Kafka is unreachable
MAX_SOFT_FAILURES = 3  # timeouts / retriable errors in a row before the producer is replaced
CHECK_TIMEOUT_S = 3.0
CHECK_TTL_S = 1.0  # /health and /ready share one check per second
RECENT_FAILURE_S = 20.0  # a failed write counts against /ready this long, unless one succeeds
TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError)
# Every 200 waits for its record's ack, so each connection has one record in flight:
# lingering only adds latency. Batches form by themselves while a batch is on the wire
# (batcher.py), and may be large so that one request takes all that waited.
LINGER_MS = 0
MAX_BATCH_BYTES = 256 * 1024
# Below this much under max_request_size a body cannot make a too-large record: the
# headers are at most 14 fields of aiohttp's 8 KiB line limit, plus the envelope.
HEADERS_BOUND = 128 * 1024


class KafkaSink:
    def __init__(self, bootstrap: str, topic: str, max_body_bytes: int,
                 send_timeout_s: float = 10.0) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.max_request_size = max_record_bytes(max_body_bytes)
        self.send_timeout_s = send_timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._batcher: Batcher | None = None  # of self._producer
        self._lock = asyncio.Lock()
        self._next_start = 0.0  # monotonic time before which no new producer is tried
        self._soft_failures = 0  # of the current producer, in a row
        self._last_failure = 0.0  # monotonic time of the last failed write
        self._down_since: float | None = None  # first failure since the last success
        self._refused = 0  # requests answered 503 since then
        self._closing: set[asyncio.Task[None]] = set()
        self._check: asyncio.Task[Check] | None = None
        self._checked_at = 0.0
        self._missing: str | None = None  # why no record can be written, from the last check

    def _producer_for(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            **kafka_security.options(),
            bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True,
            linger_ms=LINGER_MS, max_batch_size=MAX_BATCH_BYTES,
            request_timeout_ms=int(self.send_timeout_s * 1000),
            max_request_size=self.max_request_size,
        )

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is not None and _sender_ended(self._producer):
            self._replace("its sender task ended")
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is not None:
                return self._producer
            if time.monotonic() < self._next_start:
                raise SinkUnavailable("Kafka unreachable; retrying shortly")
            producer = self._producer_for()
            try:
                # Its sender and metadata tasks outlive this request: detached.
                await asyncio.wait_for(detached(producer.start()), self.send_timeout_s)
            except (KafkaError, OSError, TimeoutError) as exc:
                self._next_start = time.monotonic() + RETRY_START_S
                self._stop_later(producer)
                self._failed(f"Kafka at {self.bootstrap} unreachable ({type(exc).__name__})")
                raise SinkUnavailable(type(exc).__name__) from None
            self._producer = producer
            self._batcher = Batcher(producer, self.topic, self.send_timeout_s)
            self._soft_failures = 0
            return producer

    async def send(self, record: RawRecord) -> None:
        """Return once Kafka acknowledged the record; else raise SinkUnavailable
        (or RecordTooLarge, which no retry can fix)."""
        if self._check is None or self._missing is not None:
            # Asked once at the first request, then again every CHECK_TTL_S while the topic
            # is missing: a record for a topic that does not exist would wait for its
            # send timeout, then get a 503 that names the wrong cause.
            await self.check()
            if self._missing is not None:
                self._refused += 1
                raise TopicMissing(self._missing)
        batcher = self._batcher
        if batcher is None or _sender_ended(batcher.producer):
            try:
                await self._started()
            except SinkUnavailable:
                self._refused += 1
                raise
            batcher = self._batcher
            assert batcher is not None
        if len(record.value) + HEADERS_BOUND > self.max_request_size:
            self._check_size(record)
        try:
            await batcher.add(record)
        except TOO_LARGE as exc:
            raise RecordTooLarge(f"Kafka refused the record as too large ({type(exc).__name__})"
                                 ) from None
        except (KafkaError, TimeoutError, OSError) as exc:
            self._refused += 1
            self._write_failed(batcher.producer, exc)
            raise SinkUnavailable(type(exc).__name__) from None
        self._succeeded()

    def _check_size(self, record: RawRecord) -> None:
        """What aiokafka's send() checks before it takes a record; a record batch is
        not checked, and one such record would fail its whole batch at the broker."""
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(record.key, record.value,
                                                                record.headers)
        if size > self.max_request_size:
            raise RecordTooLarge(f"the record is {size} bytes; the producer takes up to "
                                 f"{self.max_request_size}")

    def _write_failed(self, producer: AIOKafkaProducer, exc: BaseException) -> None:
        self._last_failure = time.monotonic()
        if producer is not self._producer:
            return  # an older producer's pending write; it is already being replaced
        name = type(exc).__name__
        fatal = isinstance(exc, KafkaError) and not isinstance(exc, KafkaTimeoutError) and (
            not exc.retriable)
        if fatal:
            # Refused by an ACL: say who was refused, once per outage, in one line.
            refused = kafka_security.refusal(exc)
            self._replace(refused if refused is not None else f"{name} (not retriable)")
            return
        self._soft_failures += 1
        self._failed(f"write to {self.topic} failed ({name})")
        if self._soft_failures >= MAX_SOFT_FAILURES:
            self._replace(f"{self._soft_failures} failed writes in a row, the last {name}")

    def _failed(self, what: str) -> None:
        """Log the first failure of an outage, not every one."""
        self._last_failure = time.monotonic()
        if self._down_since is None:
            self._down_since = self._last_failure
            log.warning("ingest: %s; answering 503 until Kafka takes records again", what)

    def _succeeded(self) -> None:
        self._soft_failures = 0
        if self._down_since is not None:
            log.warning("ingest: Kafka takes records again after %.1fs (%d requests got 503)",
                        time.monotonic() - self._down_since, self._refused)
            self._down_since = None
            self._refused = 0

    def _replace(self, why: str) -> None:
        producer, self._producer = self._producer, None
        self._batcher = None
        self._soft_failures = 0
        self._failed(f"Kafka producer broken: {why}")
        log.warning("ingest: replacing the Kafka producer: %s", why)
        if producer is not None:
            self._stop_later(producer)

    def _stop_later(self, producer: AIOKafkaProducer) -> None:
        task = detached(_stop(producer, self.send_timeout_s))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def check(self) -> Check:
        """Kafka as /health and /ready see it; one probe per CHECK_TTL_S, shared."""
        now = time.monotonic()
        if self._check is None or (self._check.done() and now - self._checked_at > CHECK_TTL_S):
            self._checked_at = now
            self._check = asyncio.ensure_future(self._probe())
        return await asyncio.shield(self._check)

    async def _probe(self) -> Check:
        try:
            producer = await self._started()
            cluster = await asyncio.wait_for(producer.client.fetch_all_metadata(),
                                             CHECK_TIMEOUT_S)
        except (SinkUnavailable, KafkaError, TimeoutError, OSError) as exc:
            return Check(False, False, f"Kafka is unreachable ({type(exc).__name__})")
        if self._producer is not producer:
            return Check(False, False, "the Kafka producer is being replaced")
        partitions = cluster.partitions_for_topic(self.topic)
        self._missing = None if partitions else (
            f"topic {self.topic} does not exist; `eventguard topics apply` creates it")
        if not partitions:
            return Check(True, False, self._missing)
        leaderless = [p for p in partitions
                      if (cluster.leader_for_partition(TopicPartition(self.topic, p)) or -1) < 0]
        if leaderless:
            return Check(True, False, f"{len(leaderless)} partitions of {self.topic} have no "
                                      "leader")
        if self._soft_failures and time.monotonic() - self._last_failure < RECENT_FAILURE_S:
            return Check(True, False, "the last writes to Kafka failed")
        return Check(True, True)

    async def close(self) -> None:
        if self._check is not None and not self._check.done():
            self._check.cancel()
        producer, self._producer = self._producer, None
        self._batcher = None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), self.send_timeout_s)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


def _sender_ended(producer: AIOKafkaProducer) -> bool:
    """aiokafka ends the sender task on a fatal error; the producer is useless then."""
    task = getattr(getattr(producer, "_sender", None), "sender_task", None)
    return isinstance(task, asyncio.Future) and task.done()


async def _stop(producer: AIOKafkaProducer, timeout_s: float) -> None:
    """Close a producer we gave up on, without writing what it still holds.

    Its pending records were (or are about to be) answered 503, so they should
    not reach Kafka later, and a plain stop() would wait for them forever while
    the broker is away. So stop its sender task (a produce request already on
    the wire may still land) and its connections, and let the rest go; requests
    still waiting on it time out into 503s.
    """
    sender = getattr(producer, "_sender", None)
    if sender is None:  # not the aiokafka we know: the slow way, bounded
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), timeout_s)
        return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(sender.close(), timeout_s)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.client.close(), timeout_s)
    producer._closed = True  # what stop() would set; else aiokafka warns "Unclosed" on GC
