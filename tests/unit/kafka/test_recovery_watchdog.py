"""Which table changelog partitions count as stuck (workers/kafka/recovery_watchdog.py), and
the recovery that the watchdog repairs: plain Faust's, which never seeks a changelog
partition back, beside QuietRecovery's, which does (the real drop, with a broker:
tests/chaos/test_recovery_drop.py)."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace as NS
from typing import Any

import pytest
from faust.tables.recovery import Recovery
from faust.types import TP

from workers.kafka import recovery_watchdog
from workers.kafka.quiet_recovery import QuietRecovery
from workers.kafka.recovery_watchdog import STUCK_S, Stalls

TP0 = TP("app-usage-changelog", 0)


def test_a_partition_without_progress_is_re_sought_once_then_given_up() -> None:
    s = Stalls()
    at = {TP0: ("active recovery", 41, 99)}
    assert s.check(0.0, at) == []
    assert s.check(STUCK_S - 0.1, at) == []
    assert s.check(STUCK_S, at) == [(TP0, "reseek")]
    assert "applied up to offset 41, the changelog ends at 99" in s.describe(TP0, at, STUCK_S)
    assert s.check(STUCK_S + 1, at) == []  # the re-seek gets its own STUCK_S
    assert s.check(2 * STUCK_S, at) == [(TP0, "give_up")]


def test_progress_or_the_end_reached_is_not_a_stall() -> None:
    s = Stalls()
    for i in range(30):  # slow but moving
        assert s.check(float(i), {TP0: ("standby", i, 1000)}) == []
    assert s.check(100.0, {TP0: ("standby", 1000, 1000)}) == []  # caught up, then idle
    assert s.check(200.0, {TP0: ("standby", 1000, 1000)}) == []


def test_a_new_phase_or_a_cleared_watch_starts_over() -> None:
    s = Stalls()
    s.check(0.0, {TP0: ("active recovery", 5, 9)})
    assert s.check(STUCK_S, {TP0: ("standby", 5, 9)}) == []  # recovery ended: a new watch
    s.clear()  # a rebalance
    assert s.check(STUCK_S + 1, {TP0: ("standby", 5, 9)}) == []
    assert s.check(2 * STUCK_S + 1, {TP0: ("standby", 5, 9)}) == [(TP0, "reseek")]


class RecordingConsumer:
    """The consumer a recovery reads through: records every call made to it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.sought = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> None:
            self.calls.append((name, args))

        return call

    async def position(self, tp: TP) -> int:
        self.calls.append(("position", (tp,)))
        return 100  # aiokafka fetched up to the end: 42-99 were thrown away

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        return dict.fromkeys(tps, 100)

    async def seek(self, tp: TP, offset: int) -> None:
        self.calls.append(("seek", (tp, offset)))
        self.sought.set()


class EmptyChangelogQueue:
    """Faust's changelog queue after the drop: nothing comes. Each `get` stands for one
    of `_slurp_changelogs`' 5 s waits that timed out."""

    def __init__(self) -> None:
        self.polls = 0
        self.polled_enough = asyncio.Event()

    async def get(self) -> Any:
        await asyncio.sleep(0.005)
        self.polls += 1
        if self.polls >= 20:  # 100 s of Faust's waits
            self.polled_enough.set()
        raise TimeoutError

    def qsize(self) -> int:
        return 0


async def _stalled(cls: type[Recovery], until: str, applied: int = 41,
                   old_standby: int | None = None) -> tuple[Recovery, RecordingConsumer]:
    """A recovery of `cls` running (all its service tasks), in active recovery of TP0 with
    records 0-`applied` applied and the changelog ending at 99, while nothing more is
    fetched; `old_standby`: TP0 was this process's standby, read up to that offset.
    Runs until the changelog queue was polled 20 times or the consumer was sought."""
    consumer = RecordingConsumer()
    queue = EmptyChangelogQueue()
    app = NS(conf=NS(stream_recovery_delay=0.0), consumer=consumer, in_recovery=False,
             in_transaction=False, tracer=None, rebalancing=False, consumer_generation_id=1)
    recovery = cls(app, NS(changelog_queue=queue, standbys_ready=True,  # type: ignore[arg-type]
                           on_standbys_ready=lambda: None))
    app.tables = NS(recovery=recovery)
    recovery.stats_interval = 0.01  # Faust's stall warnings, at once
    recovery.event_timeout_secs = 0.0
    recovery.active_tps.add(TP0)
    recovery.active_offsets[TP0] = applied
    if old_standby is not None:  # Faust pops a standby offset only when it is revoked
        recovery.standby_offsets[TP0] = old_standby
    recovery.active_highwaters[TP0] = 99
    recovery._set_recovery_started()
    await recovery.start()
    try:
        done = queue.polled_enough if until == "polled" else consumer.sought
        await asyncio.wait_for(done.wait(), 5.0)
    finally:
        await recovery.stop()
    return recovery, consumer


def test_plain_faust_never_seeks_back_a_changelog_whose_fetched_records_were_dropped(
        caplog: pytest.LogCaptureFixture) -> None:
    # robinhood/faust #580, PR #583 unmerged: when this fails, Faust rewinds a stalled
    # changelog itself and QuietRecovery._watchdog can go (workers/kafka/fixes.py).
    with caplog.at_level(logging.WARNING, logger="faust.tables.recovery"):
        recovery, consumer = asyncio.run(_stalled(Recovery, until="polled"))
    assert recovery.in_recovery and recovery.need_recovery()
    assert not recovery.signal_recovery_end.is_set()
    assert recovery.active_offsets[TP0] == 41
    assert "No event received for active tp" in caplog.text  # it notices, and only logs
    assert consumer.calls  # it did use the consumer...
    assert not [name for name, _ in consumer.calls if "seek" in name]  # ...never to seek


def test_quiet_recovery_seeks_a_stalled_changelog_to_the_first_record_not_applied(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recovery_watchdog, "CHECK_S", 0.01)
    monkeypatch.setattr(recovery_watchdog, "STUCK_S", 0.05)
    # Nothing is fetched after the seek either: it may give up before the stop; not here.
    monkeypatch.setattr(recovery_watchdog, "_die", lambda reason: None)
    _, consumer = asyncio.run(_stalled(QuietRecovery, until="sought"))
    assert [args for name, args in consumer.calls if "seek" in name] == [(TP0, 42)]


def test_a_standby_turned_active_is_judged_by_its_active_offset(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """CI, stop 24: a usage process whose standby partitions became active re-read them
    from 0, that read was lost, and the recovery waited 120 s until the test gave up; the
    watchdog took the old standby offset (at the end) for the progress and saw no stall.
    On a real broker: tests/chaos/test_recovery_drop.py."""
    monkeypatch.setattr(recovery_watchdog, "CHECK_S", 0.01)
    monkeypatch.setattr(recovery_watchdog, "STUCK_S", 0.05)
    monkeypatch.setattr(recovery_watchdog, "_die", lambda reason: None)
    _, consumer = asyncio.run(_stalled(QuietRecovery, until="sought", applied=-1,
                                       old_standby=99))
    assert [args for name, args in consumer.calls if "seek" in name] == [(TP0, 0)]


def test_the_watchdog_ends_when_its_service_stops() -> None:
    """A stopping worker reads no changelog: judged, it looked stuck and exited 70, and
    mode waited for the task, so a SIGTERM took 20 s (the soak found both)."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    app = object()  # no tables, no consumer: touching it would raise
    asyncio.run(asyncio.wait_for(recovery_watchdog.watch(app, sleep, lambda: True), 1.0))
    assert slept == [recovery_watchdog.CHECK_S]
