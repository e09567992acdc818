"""Faust's Monitor keeps counters and timings per event; LeanMonitor keeps only the offsets."""

from __future__ import annotations

from types import SimpleNamespace

from faust.sensors import Monitor
from faust.types import TP

from workers.kafka.lean_monitor import LeanMonitor

TPS = TP("raw-events", 0)


def _events(monitor: Monitor, n: int = 100) -> SimpleNamespace:
    message = SimpleNamespace(time_in=None, time_out=None, time_total=None)
    for offset in range(n):
        monitor.on_message_in(TPS, offset, message)  # type: ignore[arg-type]
        monitor.on_message_out(TPS, offset, message)  # type: ignore[arg-type]
    return message


def test_plain_faust_counts_and_times_every_event() -> None:
    monitor = Monitor()
    message = _events(monitor)
    assert monitor.messages_received_total == 100
    assert message.time_in is not None and message.time_out is not None


def test_the_lean_monitor_keeps_only_the_read_offsets() -> None:
    monitor = LeanMonitor()
    message = _events(monitor)
    assert monitor.messages_received_total == 0
    assert message.time_in is None and message.time_out is None
    assert monitor.tp_read_offsets[TPS] == 99  # Faust's lag views read it
