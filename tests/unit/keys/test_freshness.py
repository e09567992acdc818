"""When a worker's key table counts as current (workers/keys/freshness.py), clock handed in."""

from workers.keys.freshness import (
    END_UNKNOWN_S,
    GIVE_UP_S,
    HOLD_AFTER_S,
    STALE_AFTER_S,
    Freshness,
    Step,
)


def loaded(end: int = 10) -> Freshness:
    f = Freshness(0, now=0.0)
    f.saw_end(end, 0.0)
    f.applied(end, 0.1)
    return f


def test_loaded_only_once_an_end_offset_from_the_broker_is_reached() -> None:
    f = Freshness(0, now=0.0)
    f.applied(5, 0.05)  # records, but no end offset from the broker: not yet
    assert not f.loaded
    f.saw_end(10, 0.1)
    assert f.problem(0.2) == "loading the key table (5 records to go)"
    f.applied(10, 0.3)
    assert f.loaded and f.problem(0.3) is None and f.lag == 0


def test_an_empty_changelog_is_loaded_at_once() -> None:
    f = Freshness(4, now=0.0)  # log start 4 (compacted), end 4
    f.saw_end(4, 0.0)
    assert f.loaded and f.problem(0.0) is None


def test_continuous_changes_applied_promptly_stay_current() -> None:
    f = loaded()
    t = 0.1
    for end in range(11, 200):  # a new end offset every 50 ms, applied 20 ms later
        t += 0.05
        f.saw_end(end, t)
        assert f.problem(t) is None
        f.applied(end, t + 0.02)
    assert f.next_step(t + 10) is Step.NONE and f.stalls == 0


def test_behind_an_old_end_offset_holds_decisions_then_reseeks_once_then_gives_up() -> None:
    f = loaded()
    f.saw_end(12, 1.0)  # a record the reader never gets (dropped)
    assert f.problem(1.0 + HOLD_AFTER_S - 0.01) is None
    f.saw_end(12, 1.0 + HOLD_AFTER_S)  # asked again: still 12
    assert f.problem(1.0 + HOLD_AFTER_S) == (
        f"key table 2 records behind its changelog for {HOLD_AFTER_S:.1f} s")
    assert f.next_step(1.0 + HOLD_AFTER_S) is Step.NONE  # slow, not stuck yet
    t = 1.0 + STALE_AFTER_S
    assert f.next_step(t) is Step.RESEEK and f.stalls == 1
    assert f.next_step(t + 0.1) is Step.NONE  # one re-seek per episode
    assert f.next_step(t + GIVE_UP_S) is Step.GIVE_UP
    assert "stayed 2 records behind" in f.why_give_up


def test_a_reseek_that_heals_ends_the_episode() -> None:
    f = loaded()
    f.saw_end(12, 1.0)
    assert f.next_step(1.0 + STALE_AFTER_S) is Step.RESEEK
    f.applied(12, 3.5)
    f.saw_end(12, 3.5)
    assert f.problem(3.5) is None and f.next_step(3.5) is Step.NONE
    f.saw_end(13, 4.0)  # a later drop is a new episode, counted and re-sought again
    assert f.next_step(4.0 + STALE_AFTER_S) is Step.RESEEK and f.stalls == 2


def test_progress_after_the_reseek_postpones_giving_up() -> None:
    f = loaded()
    f.saw_end(5000, 1.0)
    assert f.next_step(3.0) is Step.RESEEK
    f.applied(3000, 7.0)  # slow, but moving: not current, not dead
    assert f.problem(7.5) is not None
    assert f.next_step(7.5) is Step.NONE
    assert f.next_step(7.0 + GIVE_UP_S) is Step.GIVE_UP


def test_a_slow_first_load_is_not_a_stall_but_no_progress_is() -> None:
    f = Freshness(0, now=0.0)
    f.saw_end(100_000, 0.0)
    for t in range(1, 6):
        f.applied(t * 10_000, float(t))
        assert f.next_step(float(t)) is Step.NONE
    assert f.next_step(5.0 + STALE_AFTER_S) is Step.RESEEK


def test_no_fresh_answer_from_the_broker_means_not_current() -> None:
    f = loaded()
    assert f.problem(END_UNKNOWN_S - 0.01) is None
    assert f.problem(END_UNKNOWN_S) == (
        f"no end offset of the key table's changelog from the broker for {END_UNKNOWN_S:.1f} s")
    assert Freshness(0, now=0.0).problem(0.0) == (
        "asking the broker for the key table changelog's end offset")


def test_an_answer_older_than_what_was_applied_is_no_news() -> None:
    """The reader applied records while the broker's answer was on its way (the soak
    found this: a worker took it for a recreated changelog and exited 70)."""
    f = loaded(10)
    f.applied(12, 1.0)
    f.saw_end(11, 1.1)
    assert f.lag == 0 and f.problem(1.1) is None and f.next_step(1.1) is Step.NONE
