"""The ingest is SIGKILLed under load and restarted on the same port.

A 200 means Kafka has the record: every request that got one must be decided,
whatever happened to the ingest afterwards. Requests in flight when it died get
a connection error (never a 200), and the load goes on once it is back.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from tests.chaos.conftest import ChaosStack
from tests.chaos.load import Load, drain, verdict

RATE = 400.0
LOAD_S = 30.0
KILL_AT_S = 10.0
RESTART_AFTER_S = 1.0
DRAIN_S = 90.0  # one worker, no rebalance: the backlog is seconds of load


@pytest.mark.chaos
@pytest.mark.timeout(400)
def test_ingest_sigkill_mid_load_loses_no_acknowledged_request(chaos_stack: ChaosStack) -> None:
    cs = chaos_stack
    first = cs.ingest()
    worker = cs.worker()

    async def go() -> None:
        await cs.wait_deciding([worker], timeout_s=120)
        load = Load(cs, RATE, timeout_s=15)
        timings: dict[str, float] = {}

        async def chaos() -> None:
            start = time.monotonic()
            await asyncio.sleep(KILL_AT_S)
            os.killpg(first.popen.pid, signal.SIGKILL)
            first.popen.wait(10)
            timings["killed"] = time.monotonic() - start
            cs.mark("ingest", f"SIGKILLed pid {first.popen.pid}")
            await asyncio.sleep(RESTART_AFTER_S)
            second = await asyncio.to_thread(cs.ingest)  # blocks until /health answers
            timings["healthy"] = time.monotonic() - start
            print(f"[chaos] ingest pid {first.popen.pid} SIGKILLed at {timings['killed']:.1f}s, "
                  f"pid {second.popen.pid} healthy on port {cs.port} at "
                  f"{timings['healthy']:.1f}s")

        async with cs.collector() as col:
            result, _ = await asyncio.gather(load.run(LOAD_S), chaos())
            print(f"[chaos] {result.summary()}")
            print(f"[chaos] 200s per second (/other!): {result.timeline()}")
            drained_s, left = await drain(col, result.ok, DRAIN_S, worker.alive)
            print(f"[chaos] drain: {drained_s:.1f}s after the load ended, {len(left)} of "
                  f"{len(result.ok)} 200s still without a decision")
            v = verdict(col, result.ok)
        print(f"[chaos] {v.summary()}")
        after_restart = sum(c["200"] for sec, c in result.per_second.items()
                            if sec > timings["healthy"] + 1)
        print(f"[chaos] 200s after the restart: {after_restart}")
        assert after_restart > 0, "no 200 after the ingest came back"
        assert not v.lost, f"{len(v.lost)} request ids got a 200 but no decision: {v.lost[:5]}"
        assert not v.conflicting, f"conflicting decisions: {list(v.conflicting.items())[:5]}"
        assert not v.wrong, f"wrong decisions: {list(v.wrong.items())[:5]}"
        failed = {k: n for k, n in result.statuses.items() if k != "200"}
        assert not any(k.isdigit() and int(k) >= 500 and k != "503" for k in failed), failed
        assert worker.alive(), f"the worker died:\n{worker.tail()}"

    asyncio.run(go())
