"""Concurrent requests share record batches, and each still waits for its own
batch's ack (fakes from test_kafka_sink; tests/chaos runs the real producer)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.partitioner import murmur2

from tests.unit.ingest.test_kafka_sink import RECORD, FakeProducer, Kafka, Sink, fails, run
from workers.ingest import kafka_sink
from workers.ingest.metadata import RawRecord
from workers.ingest.sink import RecordTooLarge


def random_key(n: int) -> RawRecord:
    return RawRecord(f"{n:032x}".encode(), b"{}", [], random_key=True)


def nonce(text: str) -> RawRecord:
    return RawRecord(text.encode(), b"{}", [("eg-nonce", text.encode())])


class Gate:
    """Holds every batch at send_batch until opened; counts the batches it held."""

    def __init__(self, kafka: Kafka) -> None:
        self.open = asyncio.Event()
        self.held = 0
        kafka.send = self.wait

    async def wait(self, _: FakeProducer) -> None:
        self.held += 1
        await self.open.wait()


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def test_concurrent_requests_share_one_batch_and_wait_for_its_ack() -> None:
    async def go(sink: Sink, kafka: Kafka) -> None:
        await sink.send(RECORD)  # the producer is started
        gate = Gate(kafka)
        sends = [asyncio.ensure_future(sink.send(random_key(n))) for n in range(20)]
        await settle()
        assert gate.held == 1 and not any(s.done() for s in sends)  # no 200 before the ack
        gate.open.set()
        await asyncio.gather(*sends)
        [_, (_, records)] = kafka.producers[0].batches
        assert [r.key for r in records] == [random_key(n).key for n in range(20)]
    run(go)


def test_records_that_wait_for_a_batch_in_flight_leave_together_after_it() -> None:
    async def go(sink: Sink, kafka: Kafka) -> None:
        kafka.leaders = {0: 1, 1: 1}  # one broker leads both partitions
        await sink.send(RECORD)
        gate = Gate(kafka)
        first = asyncio.ensure_future(sink.send(random_key(0)))
        await settle()
        later = [asyncio.ensure_future(sink.send(random_key(n))) for n in range(1, 6)]
        await settle()
        assert gate.held == 1  # the broker has our batch: the rest wait here
        gate.open.set()
        await asyncio.gather(first, *later)
        batches = kafka.producers[0].batches[1:]
        assert [len(records) for _, records in batches] == [1, 5]
        assert batches[0][0] != batches[1][0]  # sticky, in turn over the partitions
    run(go)


def test_a_nonce_goes_to_the_partition_of_its_key_hash() -> None:
    async def go(sink: Sink, kafka: Kafka) -> None:
        kafka.leaders = {p: p for p in range(4)}
        texts = [f"nonce-{n}" for n in range(12)]
        await asyncio.gather(*(sink.send(nonce(t)) for t in texts))
        where = {r.key.decode(): p for p, records in kafka.producers[0].batches for r in records}
        assert where == {t: (murmur2(t.encode()) & 0x7FFFFFFF) % 4 for t in texts}
    run(go)


def test_a_failed_batch_fails_each_of_its_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka_sink, "RETRY_START_S", 0.0)

    async def go(sink: Sink, kafka: Kafka) -> None:
        async def hang(p: FakeProducer) -> None:
            if p is kafka.producers[0]:
                await asyncio.sleep(1)
        kafka.send = hang
        results = await asyncio.gather(*(fails(sink) for _ in range(5)),
                                        return_exceptions=True)
        assert results == [None] * 5  # each got SinkUnavailable
        await sink.send(RECORD)  # five failed writes in a row replaced the producer
        assert len(kafka.producers) == 2 and kafka.producers[1].sent == [RECORD]
    run(go)


def test_a_record_too_large_is_refused_before_it_joins_a_batch() -> None:
    async def go(sink: Sink, kafka: Kafka) -> None:
        huge = RawRecord(b"k", b"x" * (sink.max_request_size + 1), [])
        await sink.send(RECORD)
        others = [asyncio.ensure_future(sink.send(random_key(n))) for n in range(3)]
        with pytest.raises(RecordTooLarge):
            await sink.send(huge)
        await asyncio.gather(*others)
        assert [r.key for r in kafka.producers[0].sent[1:]] == [random_key(n).key for n in range(3)]
    run(go)


def test_records_wait_for_the_topic_metadata() -> None:
    async def go(sink: Sink, kafka: Kafka) -> None:
        await sink.send(RECORD)
        kafka.leaders = {}  # the producer does not know the topic (yet)

        async def appears(topic: str) -> set[int]:
            kafka.leaders = {0: 1}
            return {0}
        kafka.producers[0].partitions_for = appears  # type: ignore[method-assign]
        await sink.send(random_key(1))
        partition, records = kafka.producers[0].batches[-1]
        assert partition == 0 and [r.key for r in records] == [random_key(1).key]
    run(go)


def test_a_topic_that_does_not_appear_is_a_failed_write() -> None:
    async def go(sink: Sink, kafka: Kafka) -> None:
        await sink.send(RECORD)
        kafka.leaders = {}
        await fails(sink)
    run(go)
