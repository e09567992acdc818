"""Plain tallies (tally.py) as Prometheus metric families, built at scrape time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from workers.metrics.tally import Buckets


def counter(name: str, help_text: str, labels: Sequence[str],
            counts: Iterable[tuple[Sequence[str], float]]) -> CounterMetricFamily:
    """`name` without `_total`: prometheus_client adds it. `counts`: (label values, count)."""
    family = CounterMetricFamily(name, help_text, labels=list(labels))
    for values, count in sorted(counts, key=lambda item: tuple(item[0])):
        family.add_metric(list(values), count)
    return family


def plain_counter(name: str, help_text: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, help_text, value=value)


def gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


def labelled_gauge(name: str, help_text: str, labels: Sequence[str],
                   values: Iterable[tuple[Sequence[str], float]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=list(labels))
    for label_values, value in values:
        family.add_metric(list(label_values), value)
    return family


def histogram(name: str, help_text: str, buckets: Buckets) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, help_text)
    family.add_metric([], buckets.cumulative(), buckets.sum)
    return family
