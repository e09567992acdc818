"""A usage process that is down or hung cannot stop a decision, and catches up when back.

An ingest, one worker and one usage process on the real broker, under a steady load of
three kinds (tests/chaos/load.py):

0. before any usage process runs, `eventguard keys usage` and the admin API say in one
   line that none answers, and what to do;
1. the usage process is SIGSTOPped mid-load for longer than its session timeout (a hung
   process, as a usage table recovery that never ends leaves it): every request the
   ingest answered 200 meanwhile is decided, read back from audit-log and the output
   topics, and the worker's /ready stays 200;
2. SIGCONT: the usage process rejoins its group and catches up: its counts cover every
   audit-log record on the topic, per key id and reason. Its group expelled it while it
   was stopped, so, as after a SIGKILL, what it had counted and not yet committed is
   counted again (at-least-once; docs/operations.md, "Per-key usage"): at most about a
   second of decisions, bounded here as in test_usage.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import aiohttp
import pytest
import yaml

from tests.chaos.conftest import ChaosStack
from tests.chaos.load import Load, drain, verdict
from tests.chaos.test_usage import ADMIN_TOKEN, RATE, settled_at_least, show
from workers.devstack.processes import free_port
from workers.usage.tally import UNKNOWN

STOPPED_S = 15.0  # longer than the usage group's 10 s session: the group drops it


async def worker_ready_throughout(url: str, stop: asyncio.Event) -> tuple[int, int]:
    """(probes of the worker's /ready, how many answered 200) until `stop`."""
    probes = ok = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as s:
        while not stop.is_set():
            probes += 1
            try:
                async with s.get(f"{url}/ready") as r:
                    ok += r.status == 200
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.5)
    return probes, ok


@pytest.mark.chaos
@pytest.mark.timeout(420)
def test_a_stopped_usage_process_stops_no_decision(chaos_stack: ChaosStack) -> None:
    cs = chaos_stack
    usage_port = free_port()
    cs.config.write_text(yaml.safe_dump({
        "api_keys": [{"id": "load", "server_secret": cs.secrets["load"]},
                     {"id": "web", "client_secret": cs.secrets["web"],
                      "origins": ["*.shop.test"]}],
        "server": {"api_keys_reload_sec": 1, "admin_token": ADMIN_TOKEN},
        "usage": {"url": f"http://127.0.0.1:{usage_port}"},
    }))
    admin_url = cs.ingest().url
    w = cs.worker()

    # 0. No usage process yet: one line that says what to do, from the CLI and the admin API.
    done = subprocess.run(
        [sys.executable, "-m", "workers.cli", "keys", "usage"], capture_output=True,
        text=True, timeout=60,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": cs.bootstrap,
             "EVENTGUARD_TOPIC_PREFIX": cs.prefix, "EVENTGUARD_CONFIG": str(cs.config)})
    print(f"[usage-stopped] keys usage with no usage process: exit {done.returncode}, "
          f"{done.stderr.strip()!r}")
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1
    assert f"127.0.0.1:{usage_port}" in done.stderr and "`eventguard usage`" in done.stderr

    async def go() -> None:
        async with aiohttp.ClientSession() as s, s.get(
                f"{admin_url}/api/v1/admin/usage", headers={"X-Admin-Token": ADMIN_TOKEN}) as r:
            body = await r.json()
            print(f"[usage-stopped] admin API with no usage process: {r.status} {body}")
            assert r.status == 503 and r.headers.get("Retry-After")
            assert "`eventguard usage`" in body["error"]

        u = cs.usage("usage", usage_port)
        async with cs.collector() as col:
            t0 = time.monotonic()
            await cs.wait_deciding([w])
            await cs.wait_ready(u)
            print(f"[usage-stopped] worker deciding and usage ready after "
                  f"{time.monotonic() - t0:.1f}s")

            # 1. SIGSTOP the usage process mid-load.
            stop, watching = asyncio.Event(), asyncio.Event()
            load = Load(cs, RATE)
            window: dict[str, float] = {}

            async def hang() -> None:
                await asyncio.sleep(3.0)
                cs.mark("usage", "SIGSTOP")
                os.killpg(u.popen.pid, signal.SIGSTOP)
                window["stopped"] = time.monotonic()
                await asyncio.sleep(STOPPED_S)
                window["resumed"] = time.monotonic()
                stop.set()  # the load ends with the stop: every request in it met a hung usage

            ready_probe = asyncio.create_task(worker_ready_throughout(w.url, watching))
            result, _ = await asyncio.gather(load.run(240.0, stop), hang())
            took, left = await drain(col, result.ok, 60)
            watching.set()
            probes, ready_ok = await ready_probe
            v = verdict(col, result.ok)
            print(f"[usage-stopped] step 1, usage SIGSTOPped {STOPPED_S:.0f}s: "
                  f"{result.summary()}; all decided {took:.1f}s after the load; "
                  f"{v.summary()}; worker /ready 200 on {ready_ok} of {probes} probes")
            assert not left and not v.lost and not v.wrong and not v.conflicting
            assert result.statuses.get("200", 0) >= RATE * STOPPED_S * 0.9
            assert ready_ok == probes, "the worker was not ready while usage was stopped"
            assert u.alive()

            # 2. SIGCONT: usage catches up with every decision made meanwhile.
            cs.mark("usage", "SIGCONT")
            os.killpg(u.popen.pid, signal.SIGCONT)
            resumed = time.monotonic()
            took, want, got = await settled_at_least(col, u.url)
            extra = {k: sum(got.get(k, Counter()).values()) - sum(want[k].values())
                     for k in want}
            print(f"[usage-stopped] step 2, SIGCONT: usage covered audit-log and settled "
                  f"{time.monotonic() - resumed:.1f}s after the resume; counted more than "
                  f"audit-log: {extra} (at-least-once; bound {int(RATE * 3)})")
            show("step 2", want, got)
            assert set(got) == set(want) == {"load", "web", UNKNOWN}
            assert all(n >= 0 for n in extra.values()), "usage lost decisions"
            assert sum(extra.values()) <= RATE * 3, "more counted twice than a stop can explain"
            assert w.alive() and u.alive()

    asyncio.run(go())
