"""A process's /metrics: its collectors plus the process, platform and GC ones."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.registry import Collector, CollectorRegistry

CONTENT_TYPE = CONTENT_TYPE_LATEST


def registry(*collectors: Collector, base: CollectorRegistry | None = None
             ) -> CollectorRegistry:
    """`base` (a new registry if None) with `collectors` and process_*, python_* metrics."""
    disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` beside counters
    chosen = base if base is not None else CollectorRegistry()
    for collector in collectors:
        chosen.register(collector)
    ProcessCollector(registry=chosen)
    PlatformCollector(registry=chosen)
    GCCollector(registry=chosen)
    return chosen


def render(chosen: CollectorRegistry) -> bytes:
    return generate_latest(chosen)
