"""QuietRecovery: stream partitions resumed only with the flow stopped, and no offset below
0, nor None, reaches aiokafka's seek (it raises). Each fix with the plain library beside it.

The records lost by Faust's order need a broker and several workers to show:
tests/integration/test_worker_faults.py and tests/chaos/test_key_table.py."""

from __future__ import annotations

import asyncio
from collections import Counter
from types import SimpleNamespace as NS
from typing import Any

from faust.tables.recovery import Recovery
from faust.types import TP

from workers.kafka.quiet_recovery import QuietRecovery


class SeekingConsumer:
    def __init__(self) -> None:
        self.sought: dict[Any, Any] = {}

    async def seek_wait(self, offsets: dict[Any, Any]) -> None:
        self.sought = offsets


class FlowConsumer:
    """What on_recovery_completed does to the consumer, with the flow's state at each step."""

    def __init__(self) -> None:
        self.flow_active = True
        self.steps: list[str] = []

    def stop_flow(self) -> None:
        self.flow_active = False
        self.steps.append("stop_flow")

    def resume_flow(self) -> None:
        self.flow_active = True
        self.steps.append("resume_flow")

    def assignment(self) -> set[TP]:
        return {TP("raw-events", 0)}

    def resume_partitions(self, tps: set[TP]) -> None:
        self.steps.append(f"resume_partitions, flow {'on' if self.flow_active else 'off'}")

    async def perform_seek(self) -> None:
        self.steps.append(f"seek, flow {'on' if self.flow_active else 'off'}")


def _seek(cls: type[Recovery], offsets: Counter[TP]) -> dict[Any, Any]:
    consumer = SeekingConsumer()
    # The method uses nothing of the instance; a Recovery needs a running app to build.
    asyncio.run(cls._seek_offsets(None, consumer, set(offsets), offsets,  # type: ignore[arg-type]
                                  "standby"))
    return consumer.sought


def _completed(cls: type[Recovery]) -> list[str]:
    """The steps of `cls.on_recovery_completed` on a recovery with no tables to call back."""
    consumer = FlowConsumer()

    async def nothing(*_: Any, **__: Any) -> None:
        return None

    async def wait(coro: Any, timeout: float | None = None) -> None:
        await coro

    app = NS(consumer=consumer, on_rebalance_complete=NS(send=nothing), consumer_generation_id=1,
             conf=NS(broker_request_timeout=1.0),
             flow_control=NS(resume=lambda: consumer.steps.append("flow_control.resume")),
             _fetcher=NS(maybe_start=nothing), assignor=NS(assigned_standbys=lambda: []),
             on_rebalance_end=lambda: None)
    tables = NS(values=lambda: [], changelog_queue=NS(qsize=lambda: 0),
                on_actives_ready=lambda: None, on_standbys_ready=lambda: None)
    quiet = NS(info=lambda *_: None, dev=lambda *_: None, warning=lambda *_: None)
    recovery = cls.__new__(cls)  # a Recovery needs a running app to build
    recovery.__dict__.update(app=app, tables=tables, completed=asyncio.Event(), _wait=wait,
                             log=quiet, _set_recovery_ended=lambda: None,
                             _is_changelog_tp=lambda tp: False)
    asyncio.run(recovery.on_recovery_completed(1))
    return consumer.steps


def _offsets() -> tuple[Counter[TP], list[TP]]:
    tps = [TP("eventguard-usage-changelog", n) for n in range(4)]
    offsets: Counter[TP] = Counter(dict(zip(tps, (-2, -1, 0, 41), strict=True)))
    offsets[tps[0]] = None  # type: ignore[assignment]  # what a standby without local state had
    return offsets, tps


def test_plain_faust_resumes_and_seeks_stream_partitions_with_the_flow_on() -> None:
    assert _completed(Recovery) == [
        "resume_partitions, flow on", "seek, flow on", "flow_control.resume", "resume_flow"]


def test_streams_are_resumed_and_sought_with_the_flow_stopped() -> None:
    assert _completed(QuietRecovery) == [
        "stop_flow", "resume_partitions, flow off", "seek, flow off", "flow_control.resume",
        "resume_flow"]


def test_plain_faust_passes_a_missing_standby_offset_to_the_seek() -> None:
    offsets, (a, b, c, d) = _offsets()
    assert _seek(Recovery, offsets) == {a: None, b: 0, c: 0, d: 41}


def test_standby_offsets_missing_or_below_zero_are_sought_to_the_start() -> None:
    offsets, (a, b, c, d) = _offsets()
    assert _seek(QuietRecovery, offsets) == {a: 0, b: 0, c: 0, d: 41}
