"""The ingest's Kafka side: an idempotent acks=all producer that (re)connects on demand."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from workers.ingest.metadata import RawRecord
from workers.ingest.server import SinkUnavailable

log = logging.getLogger(__name__)


def max_request_size(max_body_bytes: int) -> int:
    """Room for the largest accepted body plus headers; topics/ sets max.message.bytes to match."""
    return max(2 * 1024 * 1024, max_body_bytes + 64 * 1024)


class KafkaSink:
    def __init__(self, bootstrap: str, topic: str, max_body_bytes: int,
                 send_timeout_s: float = 10.0) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.max_request_size = max_request_size(max_body_bytes)
        self.send_timeout_s = send_timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True,
                    linger_ms=2, request_timeout_ms=int(self.send_timeout_s * 1000),
                    max_request_size=self.max_request_size,
                )
                try:
                    await asyncio.wait_for(producer.start(), self.send_timeout_s)
                except (KafkaError, OSError, TimeoutError) as exc:
                    with contextlib.suppress(Exception):
                        await producer.stop()
                    log.warning("ingest: Kafka at %s unreachable (%s)", self.bootstrap,
                                type(exc).__name__)
                    raise SinkUnavailable(str(type(exc).__name__)) from None
                self._producer = producer
            return self._producer

    async def send(self, record: RawRecord) -> None:
        producer = await self._started()
        try:
            await asyncio.wait_for(
                producer.send_and_wait(self.topic, record.value, key=record.key,
                                       headers=record.headers),
                self.send_timeout_s,
            )
        except (KafkaError, TimeoutError) as exc:
            log.warning("ingest: write to %s failed (%s)", self.topic, type(exc).__name__)
            raise SinkUnavailable(type(exc).__name__) from None

    async def healthy(self) -> bool:
        try:
            producer = await self._started()
            await asyncio.wait_for(producer.client.fetch_all_metadata(), 3.0)
        except (SinkUnavailable, KafkaError, TimeoutError):
            return False
        return True

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
