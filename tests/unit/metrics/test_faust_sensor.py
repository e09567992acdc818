"""Faust's Prometheus metrics from the per-batch hooks only (workers/metrics/faust_sensor.py)."""

import time
from types import SimpleNamespace
from typing import Any

from faust.types import TP
from prometheus_client import generate_latest

from tests.unit.metrics.scrape import parse, value
from workers.metrics.faust_sensor import PrometheusMonitor


def scrape(monitor: PrometheusMonitor) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return parse(generate_latest(monitor.registry).decode())


def test_per_event_hooks_touch_no_prometheus_metric() -> None:
    monitor = PrometheusMonitor()
    before = scrape(monitor)
    tp = TP("raw-events", 0)
    for offset in range(1000):
        monitor.on_message_in(tp, offset, None)
        monitor.on_stream_event_in(tp, offset, None, None)
        monitor.on_stream_event_out(tp, offset, None, None)
        monitor.on_message_out(tp, offset, None)
        monitor.track_tp_end_offset(tp, offset + 1)
    assert scrape(monitor) == before
    # what Faust's own lag views read is still kept, as plain dict entries
    assert monitor.tp_read_offsets[tp] == 999 and monitor.tp_end_offsets[tp] == 1000


def test_commit_rebalance_and_output_batches_are_measured() -> None:
    monitor = PrometheusMonitor()
    consumer: Any = None
    monitor.on_commit_completed(consumer, monitor.on_commit_initiated(consumer))
    app = SimpleNamespace(rebalancing_count=1)
    state = monitor.on_rebalance_start(app)
    assert value(scrape(monitor), "eventguard_total_rebalances") == 1  # Faust: in progress
    monitor.on_rebalance_return(app, state)
    monitor.on_rebalance_end(app, state)
    monitor.on_outputs_sent("audit-log", 250)
    monitor.on_outputs_delivered(time.monotonic() - 0.02)
    s = scrape(monitor)
    assert value(s, "eventguard_consumer_commit_latency_count") == 1
    assert value(s, "eventguard_total_rebalances") == 0
    assert value(s, "eventguard_total_rebalances_recovering") == 0
    assert value(s, "eventguard_rebalance_done_latency_count") == 1
    assert value(s, "eventguard_topic_messages_sent_total", topic="topic.audit-log") == 250
    assert value(s, "eventguard_total_sent_messages_total") == 250
    assert value(s, "eventguard_producer_send_latency_count") == 1  # one sample per batch
    assert value(s, "eventguard_producer_send_latency_bucket", le="10.0") == 0  # ~20 ms
    assert value(s, "eventguard_producer_send_latency_bucket", le="25.0") == 1


def test_plain_faust_sensor_updates_a_metric_per_event() -> None:
    from faust.sensors.prometheus import FaustMetrics
    from faust.sensors.prometheus import PrometheusMonitor as FaustPrometheusMonitor
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    monitor = FaustPrometheusMonitor(FaustMetrics.create(registry, "plain"))
    tp = TP("raw-events", 0)
    monitor.on_message_in(tp, 0, SimpleNamespace(time_in=None))  # type: ignore[arg-type]
    assert value(parse(generate_latest(registry).decode()), "plain_messages_received_total") == 1
