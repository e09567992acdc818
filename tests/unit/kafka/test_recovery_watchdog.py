"""Which table changelog partitions count as stuck (workers/kafka/recovery_watchdog.py)."""

from faust.types import TP

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
