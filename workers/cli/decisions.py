"""Read decisions back from accepted-events, rejected-events and audit-log.

A Collector starts at the current end of the topics, so it sees only what
happens after it was opened, and groups records by request id.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from workers import kafka_security
from workers.kafka import fixes

OUTPUT_TOPICS = ("accepted-events", "rejected-events", "audit-log")


class Collector:
    def __init__(self, bootstrap: str, topics: Iterable[str] = OUTPUT_TOPICS,
                 from_beginning: bool = False, prefix: str = "") -> None:
        """`topics` are base names; records are grouped under them, without `prefix`."""
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.topics = tuple(topics)
        self.from_beginning = from_beginning
        self.by_id: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
        self.raw: list[Any] = []
        self.count = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> Collector:
        fixes.install()  # unreadable.py: a record aiokafka cannot parse would end the reading
        consumer = AIOKafkaConsumer(**kafka_security.options(),
                                    bootstrap_servers=self.bootstrap, group_id=None,
                                    enable_auto_commit=False, fetch_max_wait_ms=50)
        await consumer.start()
        names = [self.prefix + t for t in self.topics]
        tps = [TopicPartition(t, p) for t in names for p in await partitions(self.bootstrap, t)]
        consumer.assign(tps)
        if self.from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
            for tp in tps:  # pin the start now, before anything is sent
                await consumer.position(tp)
        self._consumer = consumer
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType]
                        ) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer:
            await self._consumer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=5000)
            for tp, msgs in batches.items():
                for msg in msgs:
                    try:
                        value = orjson.loads(msg.value) if msg.value else None
                    except orjson.JSONDecodeError:
                        value = None  # not ours (anyone can write to audit-log): kept in raw
                    rid = value.get("request_id") if isinstance(value, dict) else None
                    self.by_id[str(rid)][tp.topic[len(self.prefix):]].append(value)
                    self.raw.append(msg)
                    self.count += 1
            if batches:
                async with self._changed:
                    self._changed.notify_all()

    async def wait(self, predicate: Callable[[], bool], timeout_s: float = 30.0) -> bool:
        async def until() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)
        try:
            await asyncio.wait_for(until(), timeout_s)
        except TimeoutError:
            return False
        return True

    def decided(self, request_id: str) -> bool:
        """Both the decision and its audit record have arrived."""
        got = self.by_id.get(request_id, {})
        return bool(got.get("audit-log")) and bool(
            got.get("accepted-events") or got.get("rejected-events"))

    async def decision(self, request_id: str, timeout_s: float = 30.0) -> dict[str, list[Any]]:
        if not await self.wait(lambda: self.decided(request_id), timeout_s):
            raise TimeoutError(f"no decision for {request_id} within {timeout_s:.0f}s")
        return dict(self.by_id[request_id])


async def partitions(bootstrap: str, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(**kafka_security.options(), bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    found = sorted(p["partition"] for p in described.get("partitions", []))
    if not found:
        raise RuntimeError(f"topic {topic} does not exist; run `eventguard topics apply`")
    return found
