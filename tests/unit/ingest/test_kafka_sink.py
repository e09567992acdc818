"""The sink replaces a broken producer and reports Kafka honestly; a fake
producer stands in for aiokafka here (tests/chaos restarts a real broker)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import (
    KafkaConnectionError,
    LeaderNotAvailableError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
)

from workers.ingest import kafka_sink
from workers.ingest.kafka_sink import KafkaSink
from workers.ingest.metadata import RawRecord
from workers.ingest.sink import RecordTooLarge, SinkUnavailable
from workers.settings import max_record_bytes

RECORD = RawRecord(b"k", b"{}", [("eg-endpoint", b"s2s")])
TOPIC = "raw-events"


class Cluster:
    def __init__(self, leaders: dict[int, int]) -> None:
        self.leaders = leaders

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return set(self.leaders) if topic == TOPIC and self.leaders else None

    def leader_for_partition(self, tp: TopicPartition) -> int | None:
        return self.leaders.get(tp.partition)


class Kafka:
    """What the fake producers see: is the broker up, what do sends do."""

    def __init__(self) -> None:
        self.up = True
        self.leaders = {0: 1, 1: 1}
        self.send: Callable[[FakeProducer], Awaitable[None]] | None = None
        self.producers: list[FakeProducer] = []


class FakeClient:
    def __init__(self, kafka: Kafka) -> None:
        self.kafka = kafka

    @property
    def cluster(self) -> Cluster:
        return Cluster(self.kafka.leaders)

    async def fetch_all_metadata(self) -> Cluster:
        if not self.kafka.up:
            raise KafkaConnectionError("down")
        return Cluster(self.kafka.leaders)


class Builder:
    def __init__(self) -> None:
        self.records: list[RawRecord] = []

    def append(self, *, timestamp: None, key: bytes, value: bytes,
               headers: list[tuple[str, bytes]]) -> object:
        self.records.append(RawRecord(key, value, headers))
        return object()


class FakeProducer:
    def __init__(self, kafka: Kafka) -> None:
        self.kafka = kafka
        self.client = FakeClient(kafka)
        self.sent: list[RawRecord] = []
        self.batches: list[tuple[int, list[RawRecord]]] = []  # partition, records
        self.stopped = False

    async def start(self) -> None:
        if not self.kafka.up:
            raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 1)]")

    def create_batch(self) -> Builder:
        return Builder()

    async def send_batch(self, builder: Builder, topic: str, *, partition: int
                         ) -> asyncio.Future[None]:
        assert topic == TOPIC
        if self.kafka.send is not None:
            await self.kafka.send(self)
        self.sent.extend(builder.records)
        self.batches.append((partition, builder.records))
        acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        acked.set_result(None)
        return acked

    async def partitions_for(self, topic: str) -> set[int]:
        return set(self.kafka.leaders)

    async def stop(self) -> None:
        self.stopped = True


class Sink(KafkaSink):
    def __init__(self, kafka: Kafka) -> None:
        super().__init__("127.0.0.1:1", TOPIC, 1024, send_timeout_s=0.05)
        self.kafka = kafka

    def _producer_for(self) -> Any:
        producer = FakeProducer(self.kafka)
        self.kafka.producers.append(producer)
        return producer


def run(fn: Callable[[Sink, Kafka], Awaitable[None]]) -> None:
    kafka = Kafka()

    async def go() -> None:
        sink = Sink(kafka)
        try:
            await fn(sink, kafka)
        finally:
            await sink.close()
    asyncio.run(go())


def no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka_sink, "RETRY_START_S", 0.0)
    monkeypatch.setattr(kafka_sink, "CHECK_TTL_S", 0.0)


async def fails(sink: Sink) -> None:
    with pytest.raises(SinkUnavailable):
        await sink.send(RECORD)


def test_out_of_order_sequence_replaces_the_producer(monkeypatch: pytest.MonkeyPatch) -> None:
    no_wait(monkeypatch)

    async def go(sink: Sink, kafka: Kafka) -> None:
        await sink.send(RECORD)

        async def broken(p: FakeProducer) -> None:
            if p is kafka.producers[0]:
                raise OutOfOrderSequenceNumber()
        kafka.send = broken
        await fails(sink)  # the error is answered 503 once...
        await sink.send(RECORD)  # ...and the next request gets a new producer
        assert len(kafka.producers) == 2 and kafka.producers[0].stopped
        assert kafka.producers[1].sent == [RECORD]
    run(go)


def test_three_timeouts_in_a_row_replace_the_producer(monkeypatch: pytest.MonkeyPatch) -> None:
    no_wait(monkeypatch)

    async def go(sink: Sink, kafka: Kafka) -> None:
        async def hang(p: FakeProducer) -> None:
            if p is kafka.producers[0]:
                await asyncio.sleep(1)
        kafka.send = hang
        for _ in range(2):
            await fails(sink)
        assert len(kafka.producers) == 1  # a slow broker is not yet a broken producer
        assert not (await sink.check()).ready  # but /ready says the writes fail
        await fails(sink)
        await sink.send(RECORD)
        assert len(kafka.producers) == 2
        assert (await sink.check()).ready
    run(go)


def test_a_retriable_error_alone_keeps_the_producer(monkeypatch: pytest.MonkeyPatch) -> None:
    no_wait(monkeypatch)

    async def go(sink: Sink, kafka: Kafka) -> None:
        async def once(p: FakeProducer) -> None:
            kafka.send = None
            raise LeaderNotAvailableError()
        kafka.send = once
        await fails(sink)
        await sink.send(RECORD)
        assert len(kafka.producers) == 1
    run(go)


def test_record_too_large_is_not_an_outage() -> None:
    async def go(sink: Sink, kafka: Kafka) -> None:
        async def too_large(p: FakeProducer) -> None:
            raise MessageSizeTooLargeError()
        kafka.send = too_large
        with pytest.raises(RecordTooLarge):
            await sink.send(RECORD)
        assert len(kafka.producers) == 1 and (await sink.check()).ready
    run(go)


def test_unreachable_kafka_fails_fast_and_recovers() -> None:
    async def go(sink: Sink, kafka: Kafka) -> None:
        kafka.up = False
        await fails(sink)
        tries = len(kafka.producers)
        for _ in range(50):  # within RETRY_START_S: 503 at once, no new connection attempt
            await fails(sink)
        assert len(kafka.producers) == tries
        check = await sink.check()
        assert not check.reachable and not check.ready and "unreachable" in (check.problem or "")
        kafka.up = True
        await asyncio.sleep(kafka_sink.RETRY_START_S + 0.1)
        await sink.send(RECORD)
        assert (await sink.check()).ready
    run(go)


def test_check_needs_metadata_and_leaders(monkeypatch: pytest.MonkeyPatch) -> None:
    no_wait(monkeypatch)

    async def go(sink: Sink, kafka: Kafka) -> None:
        assert (await sink.check()).ready
        kafka.leaders = {0: 1, 1: -1}
        check = await sink.check()
        assert check.reachable and not check.ready and "no leader" in (check.problem or "")
        kafka.leaders = {}
        check = await sink.check()
        assert check.reachable and not check.ready and "does not exist" in (check.problem or "")
        kafka.leaders = {0: 1}
        kafka.up = False
        assert not (await sink.check()).reachable
    run(go)


def test_body_limit_leaves_room_for_headers() -> None:
    assert max_record_bytes(1024 * 1024) == 2 * 1024 * 1024
    assert max_record_bytes(4 * 1024 * 1024) == 4 * 1024 * 1024 + 64 * 1024


def test_the_real_producer_waits_for_all_in_sync_replicas() -> None:
    # A 200 promises the record survives a broker: with min.insync.replicas=2, acks=all.
    async def built() -> tuple[int, bool]:
        producer = KafkaSink("127.0.0.1:1", TOPIC, 1024)._producer_for()
        return int(producer._sender._acks), bool(producer._txn_manager is not None)

    assert asyncio.run(built()) == (-1, True)
