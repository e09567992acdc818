"""The ingest's metrics, counted in plain numbers per request and read at scrape time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

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


class IngestCollector(Collector):
    def __init__(self, metrics: IngestMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
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
