"""Two workers under steady load; they are SIGKILLed in turn (a, b, a), each restarted
at once under the same name.

At-least-once means: no request that got a 200 is ever without a decision, no
request gets two different decisions, and the copies (duplicates) are bounded by
what a worker can have decided but not yet committed when it dies.

A killed member stays in the consumer group until its session times out
(broker_session_timeout: 10 s in workers/app.py, 60 s in Faust), and the
rebalance that the restarted worker starts waits for it: the whole group decides
nothing meanwhile. So each kill waits until the group decides again, has caught
up, and has committed what it decided at catch-up speed: every kill hits a
worker that is deciding at the load rate, which is what the bound assumes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from tests.chaos.conftest import ChaosStack
from tests.chaos.load import Load, Tracker, drain, verdict
from workers.cli.decisions import Collector
from workers.devstack.processes import Proc

RATE = 400.0  # requests/s through the ingest; each one is one decision
KILLS = 3
FIRST_KILL_S = 10.0  # seconds into the load
MIN_GAP_S = 15.0  # between kills, and at least until the group decides again (below)
AFTER_LAST_KILL_S = 10.0  # load after the last kill
MAX_LOAD_S = 330.0  # safety cap on the whole load
RESTART_AFTER_S = 1.0
IN_FLIGHT_S = 2.0  # beyond the commit interval: buffered, being flushed, being committed


def per_kill_bound(rate: float, commit_interval_s: float, commit_every: int) -> int:
    """Decisions a killed worker may have made since its last offset commit.

    A worker commits every `commit_interval_s` (or every `commit_every` records, whichever
    comes first); everything it decided since, plus what is in flight (IN_FLIGHT_S), is
    decided again by whoever takes its partitions: min(rate x (interval + in-flight),
    commit_every + rate x in-flight), with the whole load rate although a worker holds only
    half the partitions. Valid because a kill comes only once the worker has been deciding
    at the load rate (not catching up on a backlog) for longer than a commit interval."""
    return int(min(rate * (commit_interval_s + IN_FLIGHT_S), commit_every + rate * IN_FLIGHT_S))


@pytest.mark.chaos
@pytest.mark.timeout(600)
def test_worker_sigkill_three_times_under_load(chaos_stack: ChaosStack) -> None:
    cs = chaos_stack
    conf = cs.faust_settings()
    per_kill = per_kill_bound(RATE, conf["broker_commit_interval"], conf["broker_commit_every"])
    bound = KILLS * per_kill
    settle_s = conf["broker_commit_interval"] + IN_FLIGHT_S + 3.0
    print(f"[chaos] faust settings: {conf}")
    print(f"[chaos] duplicate bound per kill = min(rate x (commit_interval_s + {IN_FLIGHT_S}), "
          f"commit_every + rate x {IN_FLIGHT_S}) = min({RATE:.0f} x "
          f"({conf['broker_commit_interval']} + {IN_FLIGHT_S}), {conf['broker_commit_every']} "
          f"+ {RATE:.0f} x {IN_FLIGHT_S}) = {per_kill}; total = kills x that = {bound}")
    # A killed member stays in the group until its session times out; a rebalance (the
    # restarted worker joining) waits for it, so the whole group may stall that long.
    drain_timeout_s = max(conf["broker_session_timeout"], conf["broker_rebalance_timeout"]) + 60
    cs.ingest()
    workers = {"worker-a": cs.worker("worker-a"), "worker-b": cs.worker("worker-b")}

    async def go() -> None:
        t0 = time.monotonic()
        seen = await cs.wait_deciding(list(workers.values()), distinct_workers=2,
                                      timeout_s=180)
        print(f"[chaos] both workers deciding after {time.monotonic() - t0:.1f}s: {sorted(seen)}")
        load = Load(cs, RATE)
        stop = asyncio.Event()
        killed: list[str] = []  # ":<pid>" of each killed worker

        async def recovered(tracker: Tracker, since: float, pids: list[int]) -> float:
            """Seconds until every live worker decided again after `since` and the backlog
            is back under a second of load: only then is the next kill a kill under load."""
            while time.monotonic() - since < 2 * drain_timeout_s:
                await asyncio.sleep(0.5)
                tracker.poll()
                fresh = all(any(w.endswith(f":{pid}") and t > since
                                for w, t in tracker.last_seen.items()) for pid in pids)
                if fresh and tracker.backlog(load.result.ok) < RATE:
                    return time.monotonic() - since
            raise AssertionError(f"the group did not recover within {2 * drain_timeout_s:.0f}s")

        async def chaos(col: Collector) -> None:
            tracker = Tracker(col)
            start = time.monotonic()
            await asyncio.sleep(FIRST_KILL_S)
            try:
                for i in range(KILLS):
                    name = ("worker-a", "worker-b")[i % 2]
                    victim: Proc = workers[name]
                    assert victim.alive(), f"{name} died on its own:\n{victim.tail()}"
                    killed_at = time.monotonic()
                    killed.append(f":{victim.popen.pid}")
                    os.killpg(victim.popen.pid, signal.SIGKILL)
                    victim.popen.wait(10)
                    cs.mark(name, f"SIGKILLed pid {victim.popen.pid} (kill {i + 1})")
                    await asyncio.sleep(RESTART_AFTER_S)
                    workers[name] = cs.worker(name)
                    print(f"[chaos] kill {i + 1}: {name} pid {victim.popen.pid} at "
                          f"{killed_at - start:.1f}s into the load, restarted as pid "
                          f"{workers[name].popen.pid}")
                    if i == KILLS - 1:
                        await asyncio.sleep(AFTER_LAST_KILL_S)
                        break
                    took = await recovered(tracker, killed_at,
                                           [p.popen.pid for p in workers.values()])
                    print(f"[chaos]   both workers deciding again and backlog < 1 s of load "
                          f"{took:.1f}s after the kill")
                    # Past the catch-up: what was decided at backlog speed is committed.
                    await asyncio.sleep(max(settle_s, MIN_GAP_S - (time.monotonic() - killed_at)))
            finally:
                stop.set()

        async with cs.collector() as col:
            result, _ = await asyncio.gather(load.run(MAX_LOAD_S, stop), chaos(col))
            print(f"[chaos] {result.summary()}")
            print(f"[chaos] 200s per second (/other!): {result.timeline()}")
            drained_s, left = await drain(col, result.ok, drain_timeout_s)
            print(f"[chaos] drain: {drained_s:.1f}s after the load ended, "
                  f"{len(left)} still without a decision (timeout {drain_timeout_s:.0f}s)")
            await asyncio.sleep(3)  # late copies of the last decisions
            v = verdict(col, result.ok)
        print(f"[chaos] {v.summary()}")
        by_kill = {pid: sum(n for w, n in v.first_copy_by.items() if w.endswith(pid))
                   for pid in killed}
        unkilled = len(v.duplicated) - sum(by_kill.values())
        print(f"[chaos] duplicated request ids {len(v.duplicated)} (extra audit records "
              f"{v.extra_audit_records}); bound {bound}; first decided by each killed worker "
              f"{by_kill} (bound {per_kill} each); by workers never killed {unkilled}")
        for name, proc in workers.items():
            print(f"[chaos] {name} pid {proc.popen.pid} alive={proc.alive()} log {proc.log}")
        assert len(result.ok) > 0.9 * RATE * result.duration_s, "too few 200s from the ingest"
        assert not v.lost, f"{len(v.lost)} request ids got a 200 but no decision: {v.lost[:5]}"
        assert not v.conflicting, f"conflicting decisions: {list(v.conflicting.items())[:5]}"
        assert not v.wrong, f"wrong decisions: {list(v.wrong.items())[:5]}"
        assert len(v.duplicated) <= bound, (
            f"{len(v.duplicated)} duplicated request ids > bound {bound}")
        assert all(n <= per_kill for n in by_kill.values()), (
            f"a kill repeated more decisions than it could have had uncommitted: {by_kill} "
            f"> {per_kill}")
        for name, proc in workers.items():
            assert proc.alive(), f"{name} exited:\n{proc.tail()}"

    asyncio.run(go())
