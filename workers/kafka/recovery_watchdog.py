"""A watchdog over Faust's reading of table changelogs: a recovery or a standby that makes
no progress while records remain is logged, re-sought, and if still stuck, ends the process.

faust-streaming 0.15.3 can throw fetched changelog records away after aiokafka moved the
partition past them (../shared/KAFKA-AND-FAUST-NOTES.md, "How Faust can skip changelog
records"), and nothing rewinds a changelog partition afterwards: a recovery then waits
for ever ("No event received for active tp ... since recovery start" every 5 s, and the
worker never decides again), and a standby or global table falls behind for good. Every
CHECK_S this asks the broker for the end offsets of the changelog partitions Faust reads,
and compares them with what Faust applied (`Recovery.active_offsets`/`standby_offsets`,
the offset of the last record applied). A partition whose applied offset does not move
for STUCK_S while records remain gets one line (partition, offsets, phase) and a seek to
the first record not applied; still stuck STUCK_S later, the process exits 70 and the
supervisor restarts it, which re-reads the changelog.

Remove when Faust rewinds a changelog partition after a drop (robinhood/faust #580, PR
#583 never merged; faust-streaming has no issue for it as of 2026-08).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)
CHECK_S = 2.0
STUCK_S = 10.0  # Faust's own warning comes after 5 s without an event

Position = tuple[str, int, int]  # phase, offset of the last record applied, last offset


@dataclass
class _Watch:
    phase: str
    offset: int
    since: float  # when `offset` last moved (or the watch began)
    reseek_at: float | None = None


class Stalls:
    """Which partitions are stuck, from positions handed in with the clock (no I/O)."""

    def __init__(self) -> None:
        self._watches: dict[Any, _Watch] = {}

    def clear(self) -> None:
        """Forget every partition: a rebalance stops reading, and recovery starts again."""
        self._watches.clear()

    def check(self, now: float, positions: Mapping[Any, Position]) -> list[tuple[Any, str]]:
        """`positions`: partition -> (phase, applied, last). Returns (partition, action)
        for the ones to re-seek ("reseek") or to give up on ("give_up")."""
        actions: list[tuple[Any, str]] = []
        for tp in set(self._watches) - set(positions):
            del self._watches[tp]
        for tp, (phase, applied, last) in positions.items():
            watch = self._watches.get(tp)
            if applied >= last:
                self._watches.pop(tp, None)
                continue
            if watch is None or watch.phase != phase or applied != watch.offset:
                self._watches[tp] = _Watch(phase, applied, now)
                continue
            idle = now - max(watch.since, watch.reseek_at or watch.since)
            if idle < STUCK_S:
                continue
            if watch.reseek_at is None:
                watch.reseek_at = now
                actions.append((tp, "reseek"))
            else:
                actions.append((tp, "give_up"))
        return actions

    def describe(self, tp: Any, positions: Mapping[Any, Position], now: float) -> str:
        phase, applied, last = positions[tp]
        watch = self._watches[tp]
        return (f"{tp.topic}[{tp.partition}] ({phase}): applied up to offset {applied}, "
                f"the changelog ends at {last}, no progress for {now - watch.since:.0f} s")


async def positions(app: Any) -> dict[Any, Position]:
    """What Faust applied of each changelog partition it reads, and where each ends."""
    recovery = app.tables.recovery
    watched: dict[Any, str] = {}
    if recovery.in_recovery:
        watched.update(dict.fromkeys(recovery.active_tps, "active recovery"))
    else:
        # After recovery Faust reads only standbys, and global tables' partitions.
        for tp in recovery.active_tps:
            if getattr(recovery.tp_to_table.get(tp), "is_global", False):
                watched[tp] = "global table"
    for tp in recovery.standby_tps:
        watched.setdefault(tp, "standby")
    if not watched:
        return {}
    ends = await app.consumer.highwaters(*watched)
    out: dict[Any, Position] = {}
    for tp, phase in watched.items():
        end = ends.get(tp)
        if end is None:
            continue
        # Each phase's own offsets, as Faust credits them: a standby partition that became
        # active keeps its old standby offset (Faust pops it only on revoke), and taking
        # the larger one hid an active recovery stuck at -1 behind a standby at the end.
        offsets = recovery.standby_offsets if phase == "standby" else recovery.active_offsets
        out[tp] = (phase, _offset(offsets, tp), end - 1)
    return out


def _offset(offsets: Mapping[Any, int | None], tp: Any) -> int:
    value = offsets.get(tp)
    return -1 if value is None else int(value)


EXIT_CODE = 70  # EX_SOFTWARE, as the worker's other fail-closed exits (agents/outbox.py)


def _die(reason: str) -> None:
    """End the process now: the supervisor restarts it, and it reads the changelog again."""
    log.critical("%s. Exiting with code %d so that the supervisor restarts it.", reason,
                 EXIT_CODE)
    logging.shutdown()
    os._exit(EXIT_CODE)


async def watch(app: Any, sleep: Callable[[float], Awaitable[Any]],
                stopping: Callable[[], bool], clock: Callable[[], float] = time.monotonic
                ) -> None:
    """Check `app`'s changelog reading every CHECK_S until `stopping()`. Run from the
    recovery service itself (workers/kafka/quiet_recovery.py): Faust starts app timers and
    tasks only once the first recovery completed, which is the recovery this must watch.
    A stopping worker reads nothing: without the check it was "stuck", and exited 70."""
    stalls = Stalls()
    generation = None
    while True:
        await sleep(CHECK_S)  # mode's: returns at once when the service stops
        if stopping():
            return
        recovery = app.tables.recovery
        # Faust's `rebalancing` lasts until recovery ends; before recovery starts nothing
        # is read (the group may wait a session timeout for a dead member).
        waiting = app.rebalancing and not recovery.in_recovery
        if waiting or generation != app.consumer_generation_id:
            generation = app.consumer_generation_id
            stalls.clear()
            continue
        try:
            found = await positions(app)
        except Exception as exc:  # the broker is away, or the consumer is not up yet
            log.debug("recovery watchdog: no end offsets (%s)", type(exc).__name__)
            continue
        now = clock()
        for tp, action in stalls.check(now, found):
            what = stalls.describe(tp, found, now)
            if action == "give_up":
                _die(f"a table changelog is stuck even after a re-seek: {what}")
                return
            log.warning("recovery watchdog: %s; reading again from offset %d",
                        what, found[tp][1] + 1)
            await app.consumer.seek(tp, found[tp][1] + 1)
