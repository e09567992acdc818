"""Faust's Prometheus sensor without its per-event hooks.

faust.sensors.prometheus.PrometheusMonitor updates a labelled prometheus_client
metric four times per event and once per fetched record (end offsets): far more
than the 5% of a worker's throughput metrics may cost. This monitor keeps
LeanMonitor's empty per-event hooks and feeds Faust's metrics, under Faust's
names, only from the hooks that run per commit, rebalance, assignment, Faust
send, web request and record batch of the authorize agent's outputs. Offsets
and lag are read from the consumer at scrape time (workers/metrics/worker.py).
Sends are counted in plain numbers, per topic per agent batch.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import Any, cast

from faust.sensors.prometheus import MS_LATENCY_BUCKETS
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from workers.kafka.lean_monitor import LeanMonitor
from workers.metrics import families
from workers.metrics.tally import Buckets

# Faust prefixes its names with the app's name; the app id carries the topic prefix,
# which would give every deployment its own names.
PREFIX = "eventguard"


class FaustMetrics:
    """The metrics of faust.sensors.prometheus.FaustMetrics that this monitor keeps,
    with Faust's names, help texts and millisecond buckets."""

    def __init__(self, registry: CollectorRegistry, p: str = PREFIX) -> None:
        r, ms = registry, MS_LATENCY_BUCKETS
        self.commit_latency = Histogram(f"{p}_consumer_commit_latency",
                                        "Consumer commit latency in ms", registry=r, buckets=ms)
        self.rebalances = Gauge(f"{p}_total_rebalances", "Total rebalances", registry=r)
        self.rebalances_recovering = Gauge(f"{p}_total_rebalances_recovering",
                                           "Total rebalances recovering", registry=r)
        self.rebalance_return_latency = Histogram(
            f"{p}_rebalance_done_consumer_latency",
            "Consumer replying that rebalance is done to broker in ms", registry=r, buckets=ms)
        self.rebalance_end_latency = Histogram(f"{p}_rebalance_done_latency",
                                               "Rebalance finished latency in ms", registry=r,
                                               buckets=ms)
        self.assignments = Counter(f"{p}_assignment_operations",
                                   "Total assigment operations (completed/error)",
                                   ["operation"], registry=r)
        self.assign_latency = Histogram(f"{p}_assign_latency", "Assignment latency in ms",
                                        registry=r, buckets=ms)
        self.send_errors = Counter(f"{p}_total_error_messages_sent",
                                   "Total error messages sent", registry=r)
        self.table_ops = Counter(f"{p}_table_operations", "Total table operations",
                                 ["table", "operation"], registry=r)
        self.http_codes = Counter(f"{p}_http_status_codes", "Total http_status code",
                                  ["status_code"], registry=r)
        self.http_latency = Histogram(f"{p}_http_latency", "Http response latency in ms",
                                      registry=r, buckets=ms)


class PrometheusMonitor(LeanMonitor):
    """Faust's monitor for the worker; its metrics live in `self.registry`.

    Copies the names and help texts of faust.sensors.prometheus (FaustMetrics.create) and
    what its hooks observe, without its per-event hooks (the module's docstring).
    Upstream: no issue found (a cost, not a bug). Remove when Faust's Prometheus sensor
    updates no labelled metric per event."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.registry = CollectorRegistry(auto_describe=True)
        self.prom = FaustMetrics(self.registry)
        self.sent_to: collections.Counter[str] = collections.Counter()  # records by topic
        self.sent_ms = Buckets(MS_LATENCY_BUCKETS)
        self.registry.register(_Sends(self))

    def on_commit_completed(self, consumer: Any, state: Any) -> None:
        super().on_commit_completed(consumer, state)
        self.prom.commit_latency.observe(self.ms_since(cast(float, state)))

    def on_rebalance_start(self, app: Any) -> dict[str, Any]:
        state = cast(dict[str, Any], super().on_rebalance_start(app))
        self.prom.rebalances.inc()
        return state

    def on_rebalance_return(self, app: Any, state: dict[str, Any]) -> None:
        super().on_rebalance_return(app, state)
        self.prom.rebalances.dec()
        self.prom.rebalances_recovering.inc()
        self.prom.rebalance_return_latency.observe(self.ms_since(state["time_start"]))

    def on_rebalance_end(self, app: Any, state: dict[str, Any]) -> None:
        super().on_rebalance_end(app, state)
        self.prom.rebalances_recovering.dec()
        self.prom.rebalance_end_latency.observe(self.ms_since(state["time_start"]))

    def on_assignment_completed(self, assignor: Any, state: dict[str, Any]) -> None:
        super().on_assignment_completed(assignor, state)
        self.prom.assignments.labels(operation="completed").inc()
        self.prom.assign_latency.observe(self.ms_since(state["time_start"]))

    def on_assignment_error(self, assignor: Any, state: dict[str, Any],
                            exc: BaseException) -> None:
        super().on_assignment_error(assignor, state, exc)
        self.prom.assignments.labels(operation="error").inc()
        self.prom.assign_latency.observe(self.ms_since(state["time_start"]))

    def on_send_initiated(self, producer: Any, topic: str, message: Any, keysize: int,
                          valsize: int) -> Any:
        self.sent_to[topic] += 1
        return super().on_send_initiated(producer, topic, message, keysize, valsize)

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        super().on_send_completed(producer, state, metadata)
        self.sent_ms.observe(self.ms_since(cast(float, state)))

    def on_send_error(self, producer: Any, exc: BaseException, state: Any) -> None:
        super().on_send_error(producer, exc, state)
        self.prom.send_errors.inc()

    # The authorize agent's outputs bypass Faust's per-message send (outbox.py): their
    # records are counted per topic per agent batch, and each agent batch gives one
    # latency sample, from its enqueueing to the ack of its last record batch.
    def on_outputs_sent(self, topic: str, records: int) -> None:
        self.sent_to[topic] += records

    def on_outputs_delivered(self, started: float) -> None:
        self.sent_ms.observe(self.ms_since(started))

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        super().on_table_set(table, key, value)
        self.prom.table_ops.labels(table=f"table.{table.name}", operation="keys_updated").inc()

    def on_table_del(self, table: Any, key: Any) -> None:
        super().on_table_del(table, key)
        self.prom.table_ops.labels(table=f"table.{table.name}", operation="keys_deleted").inc()

    def on_web_request_end(self, app: Any, request: Any, response: Any, state: dict[str, Any],
                           *, view: Any = None) -> None:
        super().on_web_request_end(app, request, response, state, view=view)
        self.prom.http_codes.labels(status_code=int(state["status_code"])).inc()
        self.prom.http_latency.observe(self.ms_since(state["time_start"]))


class _Sends(Collector):
    """Faust's send metrics, from the monitor's plain counts."""

    def __init__(self, monitor: PrometheusMonitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[Metric]:
        by_topic = dict(self.monitor.sent_to)
        yield families.counter(f"{PREFIX}_topic_messages_sent", "Total messages sent per topic",
                               ("topic",), [((f"topic.{t}",), n) for t, n in by_topic.items()])
        yield families.plain_counter(f"{PREFIX}_total_sent_messages", "Total messages sent",
                                     sum(by_topic.values()))
        yield families.histogram(f"{PREFIX}_producer_send_latency",
                                 "Producer send latency in ms", self.monitor.sent_ms)
