"""Per-key usage across a rebalance of usage processes: the counts equal the decisions
on audit-log.

An ingest, one worker and two usage processes (`eventguard usage`) at a time on the real
broker, under a steady load of three kinds (tests/chaos/load.py: key `load` accepted, key
`web` origin_not_allowed, an unknown key):

1. usage-a alone;
2. usage-b joins mid-load;
3. usage-a leaves with SIGTERM mid-load;
4. usage-c joins, then usage-b is SIGKILLed mid-load.

After steps 1-3, once every request has its decision, the usage served over HTTP must
equal, for every key id and reason, the audit-log records on the topic: asked of either
usage process (Faust forwards a key id to the one that owns its partition), with
`eventguard keys usage` and with the ingest's admin API. Exactly: a join and a SIGTERM
commit before partitions move, so nothing may be counted twice (a SIGKILL may: see
docs/operations.md, "Per-key usage"). After step 4 the usage must cover every audit record
and may count more, at most what usage-b had counted and not yet committed. The worker
decides throughout, whatever the usage processes do.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable

import aiohttp
import orjson
import pytest
import yaml

from tests.chaos.conftest import ChaosStack
from tests.chaos.load import Load, LoadResult, Tracker, drain
from workers.cli.decisions import Collector
from workers.devstack.processes import Proc, free_port
from workers.usage import client as usage_client
from workers.usage.tally import UNKNOWN, bucket

RATE = 300.0
KEYS = ("load", "web")
ADMIN_TOKEN = "ch-usage-admin-" + "7f3c9a1e5b2d8046c1e9a3f7b5d20846"
SETTLE_S = 60.0  # from the last decision until the usage must match

Truth = dict[str, Counter[str]]


def truth(col: Collector) -> Truth:
    """Decisions per key id (or UNKNOWN) and reason, from every audit-log record."""
    out: Truth = {}
    for msg in list(col.raw):
        if not msg.topic.endswith("audit-log") or not msg.value:
            continue
        audit = orjson.loads(msg.value)
        out.setdefault(bucket(audit.get("key_id"), KEYS.__contains__), Counter())[
            str(audit["reason"])] += 1
    return out


def duplicates(col: Collector) -> int:
    return sum(len(by["audit-log"]) - 1 for by in col.by_id.values()
               if len(by.get("audit-log", [])) > 1)


def as_truth(totals_by_key: dict[str, dict[str, int]]) -> Truth:
    return {k: Counter(v) for k, v in totals_by_key.items() if v}


async def per_key(url: str, keys: list[str]) -> Truth:
    got = {}
    for key in keys:
        body = await usage_client.fetch(url, key)
        assert body["key_id"] == key
        assert sum(body["totals"].values()) == body["total"]
        assert sum(sum(m["counts"].values()) for m in body["minutes"]) == body["total"]
        got[key] = body["totals"]
    return as_truth(got)


async def overview(url: str) -> Truth:
    body = await usage_client.fetch(url)
    return as_truth({s["key_id"]: s["totals"] for s in body["keys"]})


async def local_keys(url: str) -> list[str]:
    async with aiohttp.ClientSession() as s, s.get(f"{url}/usage/?local=1") as r:
        assert r.status == 200
        return [k["key_id"] for k in (await r.json())["keys"]]


async def via_admin(ingest: str, keys: list[str]) -> Truth:
    got = {}
    async with aiohttp.ClientSession() as s:
        for key in keys:
            async with s.get(f"{ingest}/api/v1/admin/keys/{key}/usage",
                             headers={"X-Admin-Token": ADMIN_TOKEN}) as r:
                assert r.status == 200, await r.text()
                got[key] = (await r.json())["totals"]
        async with s.get(f"{ingest}/api/v1/admin/keys/load/usage") as r:
            assert r.status == 401  # no token
    return as_truth(got)


def via_cli(cs: ChaosStack, url: str) -> Truth:
    done = subprocess.run(
        [sys.executable, "-m", "workers.cli", "keys", "usage", "--json", "--url", url],
        capture_output=True, text=True, timeout=60, check=True,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": cs.bootstrap,
             "EVENTGUARD_TOPIC_PREFIX": cs.prefix, "EVENTGUARD_CONFIG": str(cs.config)})
    return as_truth({s["key_id"]: s["totals"] for s in json.loads(done.stdout)["keys"]})


async def settled(col: Collector, url: str) -> tuple[float, Truth, Truth]:
    """Seconds until the usage `url` serves per key equals audit-log; (s, truth, usage)."""
    started = time.monotonic()
    while True:
        want = truth(col)
        try:
            got = await per_key(url, sorted(want))
        except usage_client.Unavailable as exc:
            got = {}
            print(f"[usage]   {exc}")
        if got == want or time.monotonic() - started > SETTLE_S:
            return time.monotonic() - started, want, got
        await asyncio.sleep(1.0)


async def settled_at_least(col: Collector, url: str) -> tuple[float, Truth, Truth]:
    """After a SIGKILL: seconds until usage covers audit-log and stops changing."""
    started = time.monotonic()
    last: Truth = {}
    steady = 0
    while time.monotonic() - started < SETTLE_S:
        want = truth(col)
        try:
            got = await per_key(url, sorted(want))
        except usage_client.Unavailable:
            got = {}
        covered = all(got.get(k, Counter())[r] >= n for k, c in want.items()
                      for r, n in c.items())
        steady = steady + 1 if covered and got == last else 0
        if steady >= 3:
            return time.monotonic() - started, want, got
        last = got
        await asyncio.sleep(1.0)
    return time.monotonic() - started, want, last


def show(label: str, want: Truth, got: Truth) -> None:
    for key in sorted(set(want) | set(got)):
        w, g = dict(want.get(key, {})), dict(got.get(key, {}))
        print(f"[usage]   {label} {key:<10} audit-log {sum(w.values()):>5} {w}  "
              f"usage {sum(g.values()):>5}{'' if w == g else ' ' + str(g) + ' DIFFERS'}")


async def step_done(col: Collector, result: LoadResult, url: str, step: str, via: str
                    ) -> tuple[Truth, Truth]:
    """After a step's load: every 200 decided, then usage at `url` settled; shown."""
    await drain(col, result.ok, 60)
    took, want, got = await settled(col, url)
    print(f"[usage] {step}: {result.summary()}; usage matched {took:.1f}s after the last "
          "decision")
    show(f"{step.split(',')[0]}{via}", want, got)
    return want, got


def decided_by(tracker: Tracker, proc: Proc, since: float) -> bool:
    tracker.poll()
    return any(w.endswith(f":{proc.popen.pid}") and t > since
               for w, t in tracker.last_seen.items())


async def holds_partitions(proc: Proc) -> bool:
    """Whether a usage process holds some of the usage partitions (its metrics say)."""
    assert proc.alive(), proc.tail()
    try:
        async with aiohttp.ClientSession() as s, s.get(f"{proc.url}/metrics") as r:
            text = await r.text()
    except aiohttp.ClientError:  # its web server is not up yet
        return False
    return any(line.startswith("eventguard_assigned_partitions") and "-deltas" in line
               and not line.endswith(" 0.0") for line in text.splitlines())


async def until(what: str, check: Callable[[], Awaitable[bool]], timeout_s: float = 120.0
                ) -> float:
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < timeout_s, f"{what} not within {timeout_s:.0f}s"
        await asyncio.sleep(0.3)
    return time.monotonic() - started


@pytest.mark.chaos
@pytest.mark.timeout(600)
def test_usage_counts_match_audit_log_across_join_and_sigterm(chaos_stack: ChaosStack) -> None:
    cs = chaos_stack
    port_a, port_b = free_port(), free_port()
    cs.config.write_text(yaml.safe_dump({
        "api_keys": [{"id": "load", "server_secret": cs.secrets["load"]},
                     {"id": "web", "client_secret": cs.secrets["web"],
                      "origins": ["*.shop.test"]}],
        "server": {"api_keys_reload_sec": 1, "admin_token": ADMIN_TOKEN},
        "usage": {"url": f"http://127.0.0.1:{port_b}"},  # the ingest asks usage-b
    }))
    admin_url = cs.ingest().url
    w = cs.worker()
    a = cs.usage("usage-a", port_a)

    async def go() -> None:
        async with cs.collector(topics=("audit-log",)) as col:
            tracker = Tracker(col)
            t0 = time.monotonic()
            await cs.wait_deciding([w])
            await cs.wait_ready(a)
            print(f"[usage] worker deciding and usage-a ready after {time.monotonic() - t0:.1f}s")

            # 1. usage-a alone.
            one = await Load(cs, RATE).run(6.0)
            want, got = await step_done(col, one, a.url, "step 1, usage-a alone", "")
            assert got == want
            assert set(want) == {"load", "web", UNKNOWN}

            # 2. usage-b joins mid-load.
            stop = asyncio.Event()
            load = Load(cs, RATE)
            b: list[Proc] = []

            async def join() -> None:
                await asyncio.sleep(3.0)
                joined = time.monotonic()
                b.append(cs.usage("usage-b", port_b))
                await until("usage-b holding partitions", lambda: holds_partitions(b[0]))
                await cs.wait_ready(b[0])
                await cs.wait_ready(a)
                print(f"[usage] step 2: usage-b started 3.0s into the load; both ready and "
                      f"holding partitions {time.monotonic() - joined:.1f}s later")
                await asyncio.sleep(5.0)
                stop.set()

            two, _ = await asyncio.gather(load.run(180.0, stop), join())
            want, got = await step_done(col, two, a.url, "step 2, usage-b joined",
                                        " via usage-a")
            assert got == want
            assert await per_key(b[0].url, sorted(want)) == want, "usage-b answers otherwise"
            assert await overview(a.url) == want
            assert await via_admin(admin_url, sorted(want)) == want
            held = {}
            for name, proc in (("usage-a", a), ("usage-b", b[0])):
                held[name] = sorted(await local_keys(proc.url))
            print(f"[usage] step 2: key ids each usage process holds: {held}")
            # Each holds some: so a request to either one was forwarded for the others.
            assert all(held.values())
            assert sorted(k for ks in held.values() for k in ks) == sorted(want)

            # 3. usage-a leaves with SIGTERM mid-load.
            stop = asyncio.Event()
            load = Load(cs, RATE)

            async def leave() -> None:
                await asyncio.sleep(3.0)
                cs.mark("usage-a", "SIGTERM")
                termed = time.monotonic()
                await asyncio.to_thread(a.stop)
                exited = time.monotonic() - termed
                await cs.wait_ready(b[0])
                print(f"[usage] step 3: usage-a SIGTERMed 3.0s into the load, exited after "
                      f"{exited:.1f}s (code {a.popen.returncode}); usage-b ready "
                      f"{time.monotonic() - termed:.1f}s after the SIGTERM")
                await asyncio.sleep(6.0)
                stop.set()

            three, _ = await asyncio.gather(load.run(180.0, stop), leave())
            want, got = await step_done(col, three, b[0].url, "step 3, usage-a left",
                                        " via usage-b")
            dup = duplicates(col)
            total = sum(sum(c.values()) for c in want.values())
            print(f"[usage] audit-log: {total} decisions, {dup} of them repeated decisions; "
                  f"usage counts every audit record, repeats included")
            assert got == want
            assert await via_admin(admin_url, sorted(want)) == want
            assert via_cli(cs, b[0].url) == want
            assert b[0].alive(), b[0].tail()

            # 4. usage-c joins, then usage-b is SIGKILLed mid-load: at least once.
            c = cs.usage("usage-c", free_port())
            stop = asyncio.Event()
            load = Load(cs, RATE)

            async def kill() -> None:
                since = time.monotonic()
                await until("usage-c holding partitions", lambda: holds_partitions(c))
                await cs.wait_ready(c)
                await asyncio.sleep(3.0)
                cs.mark("usage-b", "SIGKILL")
                os.killpg(b[0].popen.pid, signal.SIGKILL)
                b[0].popen.wait(10)
                killed = time.monotonic()
                # usage-b's partitions move after its session times out (10 s).
                await asyncio.sleep(12.0)
                await cs.wait_ready(c)
                print(f"[usage] step 4: usage-c ready; usage-b SIGKILLed "
                      f"{killed - since:.1f}s later")
                await asyncio.sleep(3.0)
                stop.set()

            four, _ = await asyncio.gather(load.run(240.0, stop), kill())
            await drain(col, four.ok, 60)
            assert decided_by(tracker, w, t0), "the worker stopped deciding"
            took, want, got = await settled_at_least(col, c.url)
            extra = {k: sum(got.get(k, Counter()).values()) - sum(want[k].values())
                     for k in want}
            print(f"[usage] step 4, usage-b killed: {four.summary()}; usage settled "
                  f"{took:.1f}s after the last decision; counted more than audit-log: {extra} "
                  f"(at-least-once; bound {int(RATE * 3)})")
            show("step 4 via usage-c", want, got)
            assert all(n >= 0 for n in extra.values()), "usage lost decisions"
            assert sum(extra.values()) <= RATE * 3, "more counted twice than a kill can explain"
            assert w.alive(), w.tail()

    asyncio.run(go())
