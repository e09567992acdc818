"""outbox.send_all: one record batch per topic-partition, partitioned as aiokafka's
`send` partitions, and the send-path fault handling of issue 8 kept."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaConnectionError, RecordTooLargeError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

from workers.agents import outbox


@pytest.fixture(autouse=True)
def no_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    def die(reason: str) -> None:
        raise SystemExit(reason)

    monkeypatch.setattr(outbox, "die", die)


class FakeCluster:
    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0, 1, 2} if topic == "three" else {0, 1, 2, 3}

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions_for_topic(topic)


class FakeClient:
    cluster = FakeCluster()

    async def _wait_on_metadata(self, topic: str) -> None:
        return None


class FakeKafka:
    """The parts of AIOKafkaProducer that send_all uses."""

    def __init__(self, failures: list[Exception] | None = None) -> None:
        self.client = FakeClient()
        self._partitioner = DefaultPartitioner()
        self.failures = failures or []
        self.sent: list[tuple[str, int, int]] = []  # topic, partition, records
        self.deliveries: list[asyncio.Future[object]] = []

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(64, 0)  # tiny: a batch holds about one record

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int
                         ) -> asyncio.Future[object]:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((topic, partition, batch._relative_offset))
        delivery: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.deliveries.append(delivery)
        return delivery


class FakeFaustProducer:
    def __init__(self, kafka: FakeKafka) -> None:
        self.kafka = kafka

    def _ensure_producer(self) -> FakeKafka:
        return self.kafka


def outputs(topic: str, keys: list[bytes]) -> outbox.Outputs:
    out = outbox.Outputs()
    for key in keys:
        out.add(topic, key, b"v" * 40)
    return out


def test_records_go_to_the_partition_that_send_would_choose() -> None:
    kafka = FakeKafka()
    keys = [f"req-{n}".encode() for n in range(20)]
    asyncio.run(outbox.send_all(FakeFaustProducer(kafka), outputs("three", keys)))
    expected = {DefaultPartitioner()(k, [0, 1, 2], [0, 1, 2]) for k in keys}
    assert {p for _, p, _ in kafka.sent} == expected
    assert sum(n for _, _, n in kafka.sent) == len(keys)
    assert len(kafka.sent) > len(expected)  # full batches were split
    assert all(topic == "three" for topic, _, _ in kafka.sent)


def test_every_batch_delivery_is_watched(monkeypatch: pytest.MonkeyPatch) -> None:
    died: list[str] = []
    monkeypatch.setattr(outbox, "die", died.append)
    kafka = FakeKafka()

    async def main() -> None:
        await outbox.send_all(FakeFaustProducer(kafka), outputs("four", [b"a", b"b", b"c"]))
        for delivery in kafka.deliveries[:-1]:
            delivery.set_result(None)
        kafka.deliveries[-1].set_exception(RecordTooLargeError())
        await asyncio.sleep(0)

    asyncio.run(main())
    assert died == ["an output record was not delivered (RecordTooLargeError)"]


def test_a_retriable_send_error_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox, "RETRY_DELAYS_S", (0.0,))
    kafka = FakeKafka([KafkaConnectionError(), KafkaConnectionError()])
    asyncio.run(outbox.send_all(FakeFaustProducer(kafka), outputs("four", [b"a"])))
    assert len(kafka.sent) == 1


def test_a_non_retriable_send_error_ends_the_process() -> None:
    kafka = FakeKafka([RecordTooLargeError()])
    with pytest.raises(SystemExit, match="refused a record for four"):
        asyncio.run(outbox.send_all(FakeFaustProducer(kafka), outputs("four", [b"a"])))


def test_murmur2_is_kafkas() -> None:
    import os

    from aiokafka.partitioner import murmur2 as aiokafka_murmur2

    for size in [*range(0, 80), 255, 256, 257, 4099]:
        data = os.urandom(size)
        assert outbox.murmur2(data) == aiokafka_murmur2(data)
