"""The worker's metrics: what the authorize agent counts as it goes (`Decisions`) and
what is read from the worker's state only when /metrics is scraped (`WorkerProbe`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from workers.auth.decision import Method
from workers.auth.reasons import Reason
from workers.metrics import families
from workers.metrics.tally import Buckets

# A decision takes 3-100 µs; a JWT refetch may hold one up to 3 s (JWKS_WAIT_S).
DECISION_BOUNDS_S = (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                     0.005, 0.01, 0.1, 1.0, 3.5)


class Decisions:
    """Decisions by (reason, method), and the decision time of each request, kept by the
    authorize agent: a Counter increment per decision and a bisect per request."""

    __slots__ = ("counts", "duration_us")

    def __init__(self) -> None:
        self.counts: Counter[tuple[Reason, Method | None]] = Counter()
        self.duration_us = Buckets(DECISION_BOUNDS_S, per_unit=1e6)

    def labelled(self) -> dict[tuple[str, str, str], int]:
        """(decision, reason, method) -> count; only codes, never a key id or a sender's text."""
        out: dict[tuple[str, str, str], int] = {}
        for (reason, method), n in list(self.counts.items()):
            labels = ("accepted" if reason.accepted else "rejected", reason.value,
                      method.value if method is not None else "none")
            out[labels] = out.get(labels, 0) + n
        return out


@dataclass(frozen=True)
class Partition:
    """An assigned partition as the consumer sees it."""

    topic: str
    partition: int
    highwater: int | None  # the end offset from the last fetch
    committed: int | None  # the group's committed offset; None for a table's changelog


class WorkerProbe(Protocol):
    """The worker's state, read at scrape time (workers/agents/web.py reads Faust's)."""

    def keys(self) -> int: ...
    def nonces(self) -> int: ...
    def ready(self) -> bool: ...
    def key_table_lag(self) -> int | None: ...
    def key_table_stalls(self) -> int: ...
    def key_table_offset(self) -> int | None: ...
    def jwks_fetches(self) -> Mapping[str, int]: ...
    def partitions(self) -> list[Partition]: ...
    def rebalances(self) -> int: ...


class WorkerCollector(Collector):
    def __init__(self, decisions: Decisions, probe: WorkerProbe) -> None:
        self.decisions = decisions
        self.probe = probe

    def collect(self) -> Iterator[Metric]:
        p = self.probe
        yield families.counter(
            "eventguard_decisions", "Decisions made, by decision, reason code and auth method",
            ("decision", "reason", "method"), self.decisions.labelled().items())
        yield families.histogram(
            "eventguard_decision_duration_seconds",
            "Time to decide one request (all its events), JWKS refetch waits included",
            self.decisions.duration_us)
        yield families.counter(
            "eventguard_jwks_fetches", "JWKS fetches by outcome", ("outcome",),
            [((outcome,), n) for outcome, n in p.jwks_fetches().items()])
        yield families.gauge("eventguard_keys", "Keys in the key table", p.keys())
        lag = p.key_table_lag()
        if lag is not None:
            yield families.gauge(
                "eventguard_key_table_lag",
                "Key table changelog records between what this worker applied and the "
                "end offset the broker last reported", lag)
        applied = p.key_table_offset()
        if applied is not None:
            yield families.gauge(
                "eventguard_key_table_offset",
                "The next key table changelog offset this worker will apply", applied)
        yield families.plain_counter(
            "eventguard_key_table_stalls",
            "Times the key table reader was stuck behind its changelog and re-sought",
            p.key_table_stalls())
        yield families.gauge("eventguard_nonces", "Nonces of signed requests held", p.nonces())
        yield families.gauge("eventguard_worker_ready", "1 when /ready answers 200",
                             1 if p.ready() else 0)
        yield from _consumer_families(p.partitions(), p.rebalances())


def _consumer_families(parts: list[Partition], rebalances: int) -> Iterator[Metric]:
    by_topic: Counter[str] = Counter(part.topic for part in parts)
    yield families.labelled_gauge(
        "eventguard_assigned_partitions", "Partitions assigned to this worker, by topic",
        ("topic",), (((topic,), n) for topic, n in sorted(by_topic.items())))
    yield families.plain_counter("eventguard_rebalances", "Rebalances this worker took part in",
                                 rebalances)
    tp = ("topic", "partition")
    ends = [((x.topic, str(x.partition)), x.highwater) for x in parts if x.highwater is not None]
    committed = [((x.topic, str(x.partition)), x.committed) for x in parts
                 if x.committed is not None]
    lags = [((x.topic, str(x.partition)), max(0, x.highwater - x.committed)) for x in parts
            if x.highwater is not None and x.committed is not None]
    # Faust's names (faust.sensors.prometheus), read from the consumer at scrape time
    # instead of being set per record.
    yield families.labelled_gauge("eventguard_topic_partition_end_offset",
                                  "Offset ends per topic/partition", tp, ends)
    yield families.labelled_gauge("eventguard_topic_partition_offset_commited",
                                  "Offset commited per topic/partition", tp, committed)
    yield families.labelled_gauge(
        "eventguard_consumer_lag",
        "Records after the group's committed offset, per assigned topic/partition", tp, lags)
