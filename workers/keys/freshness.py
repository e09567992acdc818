"""How current a worker's key table is: judged against the changelog's end offset as the
broker reports it, never only against what the reader happened to fetch.

A pure state machine: the reader (workers/keys/follower.py) hands it the end offsets it
asks the broker for, the offsets it applied, and the clock. It answers three questions:
may the worker decide now (`problem`), and should the reader re-seek or give up
(`next_step`). Every offset is a "next offset": one past the last record applied.

Why "behind an end offset seen N seconds ago" and not "lag > 0": with key changes
arriving continuously, a healthy reader is almost always a few records behind the
newest end offset, but it passes every end offset it was shown within milliseconds.
Kafka never compacts the active segment, so the record at `end - 1` always exists:
a reader that applied every record up to an end offset has position >= that end.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

# Decisions wait once an end offset seen this long ago is not applied yet: with END_CHECK_S
# of the reader on top, a key change takes effect within a second, or nobody decides.
HOLD_AFTER_S = 0.5
# Past this, the reader is stuck, not slow: one line, a counted stall, one re-seek.
STALE_AFTER_S = 2.0
# A re-seek after which no record is applied for this long: the process exits (70).
GIVE_UP_S = 5.0
# Without a fresh end offset from the broker for this long (two checks missed: the broker
# is slow or away, or the event loop was busy), the worker cannot know it is current.
# With HOLD_AFTER_S this bounds what a decision can miss to changes of the last second.
END_UNKNOWN_S = 0.5


class Step(enum.Enum):
    NONE = "none"
    RESEEK = "reseek"  # seek the reader back to `position`: records may have been dropped
    GIVE_UP = "give_up"  # a re-seek did not heal it


@dataclass
class Freshness:
    position: int  # the next offset to apply
    now: float  # when reading started
    end: int | None = None  # the last end offset the broker reported
    end_at: float | None = None
    loaded: bool = False  # every record up to an end offset the broker reported was applied
    progress_at: float = 0.0  # when a record was last applied
    stalls: int = 0  # stale episodes, each logged once and re-sought once
    reseek_at: float | None = None  # set while a stale episode lasts
    why_give_up: str = ""
    # End offsets not reached yet, with when each was seen; increasing.
    _pending: deque[tuple[int, float]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.progress_at = self.now

    def saw_end(self, end: int, now: float) -> None:
        """`end` as the broker answered at `now`. An answer can be older than records the
        reader applied meanwhile (below `position`): that is no news. A changelog that was
        really recreated makes the reader's fetch fail out of range instead."""
        self.end, self.end_at = max(end, self.position), now
        if end > self.position and (not self._pending or end > self._pending[-1][0]):
            self._pending.append((end, now))
        self._settle()

    def applied(self, next_offset: int, now: float) -> None:
        self.position = max(self.position, next_offset)
        self.progress_at = now
        self._settle()

    def _settle(self) -> None:
        while self._pending and self._pending[0][0] <= self.position:
            self._pending.popleft()
        if not self._pending and self.end is not None and self.position >= self.end:
            self.loaded = True

    @property
    def lag(self) -> int | None:
        """Records between what is applied and the last end offset the broker reported."""
        return None if self.end is None else max(0, self.end - self.position)

    def behind_s(self, now: float) -> float:
        """How long the oldest end offset not reached yet has been known."""
        return now - self._pending[0][1] if self._pending else 0.0

    def problem(self, now: float) -> str | None:
        """Why the worker must not decide now; None when its keys are current."""
        if self.end_at is None:
            return "asking the broker for the key table changelog's end offset"
        if now - self.end_at >= END_UNKNOWN_S:
            return (f"no end offset of the key table's changelog from the broker for "
                    f"{now - self.end_at:.1f} s")
        if not self.loaded:
            return f"loading the key table ({self.lag} records to go)"
        behind = self.behind_s(now)
        if behind >= HOLD_AFTER_S:
            return f"key table {self.lag} records behind its changelog for {behind:.1f} s"
        return None

    def next_step(self, now: float) -> Step:
        """What the reader does now; RESEEK at most once per stale episode."""
        if self.why_give_up:
            return Step.GIVE_UP
        behind = self.behind_s(now)
        # While loading, slow is fine (a large changelog); no progress at all is not.
        stale = behind >= STALE_AFTER_S and (
            self.loaded or now - self.progress_at >= STALE_AFTER_S)
        if not stale:
            if behind < HOLD_AFTER_S:
                self.reseek_at = None  # the episode is over
            return Step.NONE
        if self.reseek_at is None:
            self.stalls += 1
            self.reseek_at = now
            return Step.RESEEK
        if now - max(self.reseek_at, self.progress_at) >= GIVE_UP_S:
            self.why_give_up = (f"the key table stayed {self.lag} records behind its "
                                f"changelog for {behind:.0f} s, even after a re-seek")
            return Step.GIVE_UP
        return Step.NONE
