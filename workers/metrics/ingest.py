"""The ingest's metrics, counted in plain numbers per request and read at scrape time."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from workers.metrics import families
from workers.metrics.tally import Buckets

# 200 waits for acks=all: ~1-30 ms on a healthy cluster; 503 after the 10 s send timeout.
ACK_BOUNDS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BODY_BOUNDS = (64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 2097152)


class IngestMetrics:
    __slots__ = ("ack_seconds", "body_bytes", "requests", "unavailable")

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()  # (route pattern, status)
        self.ack_seconds = Buckets(ACK_BOUNDS_S)
        self.body_bytes = Buckets(BODY_BOUNDS)
        self.unavailable = 0

    def snapshot(self) -> dict[str, Any]:
        return {"requests": [[route, status, n] for (route, status), n
                             in list(self.requests.items())],
                "ack": [self.ack_seconds.counts, self.ack_seconds.total],
                "body": [self.body_bytes.counts, self.body_bytes.total],
                "unavailable": self.unavailable}

    def add(self, snapshot: dict[str, Any]) -> None:
        """Add another process's counts (a `snapshot()`) to these."""
        for route, status, n in snapshot["requests"]:
            self.requests[str(route), int(status)] += int(n)
        for buckets, (counts, total) in ((self.ack_seconds, snapshot["ack"]),
                                         (self.body_bytes, snapshot["body"])):
            if len(counts) == len(buckets.counts):  # same bounds: same version
                buckets.counts = [a + int(b) for a, b in zip(buckets.counts, counts, strict=True)]
                buckets.total += float(total)
        self.unavailable += int(snapshot["unavailable"])


class SharedCounts:
    """The counts of every process of `eventguard ingest --processes N`.

    The kernel hands a scrape's connection to any one of them, so each process writes
    its counts to its own file in `folder` every WRITE_EVERY_S, and a scrape adds up
    its own live counts and every other file. A process that exited keeps its file,
    so the sums never go down (a SIGKILL loses at most its last second).
    """

    WRITE_EVERY_S = 1.0

    def __init__(self, folder: Path, own: IngestMetrics, name: str | None = None) -> None:
        self.folder = folder
        self.own = own
        self.path = folder / f"{name or os.getpid()}.json"

    def write(self) -> None:
        partial = self.path.with_suffix(".tmp")
        partial.write_bytes(orjson.dumps(self.own.snapshot()))
        partial.replace(self.path)

    def combined(self) -> IngestMetrics:
        total = IngestMetrics()
        total.add(self.own.snapshot())
        for other in self.folder.glob("*.json"):
            if other != self.path:
                with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                    total.add(orjson.loads(other.read_bytes()))
        return total

    async def run(self) -> None:
        try:
            while True:
                self.write()
                await asyncio.sleep(self.WRITE_EVERY_S)
        finally:
            self.write()


class IngestCollector(Collector):
    def __init__(self, source: Callable[[], IngestMetrics]) -> None:
        self.source = source  # this process's counts, or every process's (SharedCounts)

    def collect(self) -> Iterator[Metric]:
        m = self.source()
        yield families.counter(
            "eventguard_ingest_requests", "HTTP requests by route pattern and status",
            ("route", "status"),
            [((route, str(status)), n) for (route, status), n in list(m.requests.items())])
        yield families.histogram(
            "eventguard_ingest_kafka_ack_seconds",
            "From handing a record to the producer to Kafka's acknowledgement (acks=all)",
            m.ack_seconds)
        yield families.histogram("eventguard_ingest_body_bytes",
                                 "Size of the event request bodies read", m.body_bytes)
        yield families.plain_counter(
            "eventguard_ingest_unavailable",
            "Event requests answered 503 because Kafka did not take the record", m.unavailable)
