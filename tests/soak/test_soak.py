"""`make soak`: 100 membership changes of 3-4 workers under steady load while keys change
60 times a second, with the usage process running; every decision is judged against the
key table's changelog.

After every change: how long until every live worker says ready, then a key is added and
the previous one revoked, and requests with both go to every raw-events partition until
each gives the right answer. Throughout: a sampler looks for stale windows (a worker
ready while behind an end offset the changelog had a second ago), and every probe
decision must agree with the key state the changelog held a second before it. Prints the
figures; EVENTGUARD_SOAK_CHANGES sets the number of changes.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections import Counter
from datetime import datetime
from functools import partial

import pytest
from aiokafka import AIOKafkaProducer

from tests.chaos.conftest import ChaosStack
from tests.chaos.load import Load, drain, verdict
from tests.soak.churn import KeyChurn, Probes
from tests.soak.members import ROTATION, Members, Sampler
from tests.soak.timeline import Timeline
from workers.auth import secrets
from workers.cli.decisions import Collector, partitions
from workers.keys.table import changelog_topic
from workers.paths import cache_dir

pytestmark = pytest.mark.soak
CHANGES = int(os.environ.get("EVENTGUARD_SOAK_CHANGES", "100"))
CHURN_RATE, PROBE_RATE, LOAD_RATE = 60.0, 30.0, 50.0
READY_WITHIN_S, CHECK_WITHIN_S = 90.0, 30.0
STALL_LINES = ("key table: stalled", "recovery watchdog:", "No event received for active tp",
               "Exiting with code 70")


def test_soak(chaos_stack: ChaosStack) -> None:
    cs = chaos_stack
    app_id = cs.prefix + "eventguard"
    members = Members(cs.stack, cs.config, cache_dir() / "faust" / app_id)
    for _ in range(3):
        members.start()
    cs.ingest()
    usage = cs.usage()
    asyncio.run(cs.wait_deciding(list(members.live.values()), distinct_workers=3))
    figures = asyncio.run(_soak(cs, members, changelog_topic(app_id)))
    assert usage.alive(), f"the usage process exited:\n{usage.tail()}"
    logs = "".join(cs.log_text(n) for n in {p.name for p in cs.stack.procs})
    lines = {line: logs.count(line) for line in STALL_LINES}
    print(f"\n[soak] log lines: {lines}")
    assert figures["stale_decisions"] == 0
    assert figures["stale_windows"] == 0
    assert figures["lost"] == 0
    assert figures["not_ready"] == 0 and figures["checks_failed"] == 0
    assert figures["exits"] == 0  # a worker that failed closed (code 70) is a stall too
    assert lines["No event received for active tp"] == 0  # a recovery that hung


async def _soak(cs: ChaosStack, members: Members, changelog: str) -> dict[str, int]:
    producer = AIOKafkaProducer(bootstrap_servers=cs.bootstrap, acks="all", linger_ms=5)
    await producer.start()
    raw = cs.prefix + "raw-events"
    parts = await partitions(cs.bootstrap, raw)
    churn = KeyChurn(producer, cs.prefix + "auth-config")
    probes = Probes(producer, raw, parts, churn)
    stop = asyncio.Event()
    async with Timeline(cs.bootstrap, changelog) as timeline, \
            cs.collector(from_beginning=False) as col:
        for key_id in churn.secrets:
            await churn.publish(key_id, "add")
        sampler = Sampler(members, timeline)
        load = Load(cs, rate=LOAD_RATE)
        started = time.monotonic()
        tasks = [asyncio.create_task(c) for c in (
            churn.run(CHURN_RATE, stop), probes.run(PROBE_RATE, stop), sampler.run(stop))]
        loading = asyncio.create_task(load.run(24 * 3600, stop))
        ready_s, check_s, kinds = [], [], Counter[str]()
        not_ready = checks_failed = 0
        for i in range(CHANGES):
            kind = ROTATION[i % len(ROTATION)]
            before = await sampler.rebalances()
            what = await asyncio.to_thread(members.change, kind)  # a stop waits
            kinds[kind] += 1
            took = await sampler.until_ready(before, READY_WITHIN_S)
            checked = await _add_and_revoke(i, churn, probes, parts, col, producer)
            not_ready += took is None
            checks_failed += checked is None
            ready_s.append(took if took is not None else READY_WITHIN_S)
            check_s.append(checked if checked is not None else CHECK_WITHIN_S)
            print(f"[soak] {i + 1:3}/{CHANGES} {what:24} ready {_s(took)} "
                  f"add+revoke seen everywhere {_s(checked)} live={len(members.live)} "
                  f"keys written={churn.written}", flush=True)
        stop.set()
        await asyncio.gather(*tasks)
        result = await loading
        await producer.flush()
        elapsed = time.monotonic() - started
        await drain(col, list(result.ok) + list(probes.sent), timeout_s=120)
        load_verdict = verdict(col, result.ok)
        stale = _stale_decisions(col, probes, timeline)
        probe_lost = [r for r in probes.sent if not col.decided(r)]
    await producer.stop()
    figures = {
        "changes": CHANGES, "not_ready": not_ready, "checks_failed": checks_failed,
        "stale_decisions": len(stale), "stale_windows": len(sampler.windows),
        "lost": len(load_verdict.lost) + len(probe_lost),
        "duplicates": load_verdict.extra_audit_records, "exits": len(sampler.exits),
    }
    print(f"[soak] {CHANGES} changes in {elapsed:.0f} s: {dict(kinds)}; "
          f"exits (restarted): {sampler.exits}")
    print(f"[soak] key changes written: {churn.written} ({churn.written / elapsed:.0f}/s); "
          f"probes: {len(probes.sent)}; {result.summary()}")
    print(f"[soak] time to ready: p50 {statistics.median(ready_s):.1f} s, "
          f"max {max(ready_s):.1f} s; add+revoke everywhere: p50 "
          f"{statistics.median(check_s):.1f} s, max {max(check_s):.1f} s")
    print(f"[soak] key reader stalls (per worker process): "
          f"{ {k: v for k, v in sampler.stalls.items() if v} or 0}")
    print(f"[soak] stale windows: {sampler.windows[:20]}; samples {sampler.samples}")
    print(f"[soak] stale decisions: {len(stale)} {stale[:20]}")
    for worker, rid, ts, _, _ in stale[:5]:
        at = datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
        print(f"[soak]   {rid} ({probes.sent[rid]}) by {worker}: the changelog around it "
              f"{timeline.around(probes.sent[rid], at)}")
    print(f"[soak] load: lost {len(load_verdict.lost)}, conflicting "
          f"{len(load_verdict.conflicting)}, wrong {len(load_verdict.wrong)}, decided twice "
          f"{len(load_verdict.duplicated)}; probes lost {len(probe_lost)}")
    gaps = [sec for sec in result.timeline().split() if sec.endswith("!")]
    print(f"[soak] load: seconds with an answer other than 200: {len(gaps)} {gaps[:20]}")
    print(f"[soak] figures {figures}")
    return figures


async def _add_and_revoke(i: int, churn: KeyChurn, probes: Probes, parts: list[int],
                          col: Collector, producer: AIOKafkaProducer) -> float | None:
    """Add member-i, revoke member-(i-1); seconds until every partition answers both."""
    new, old = f"member-{i}", f"member-{i - 1}"
    churn.secrets[new] = secrets.generate()
    await churn.publish(new, "add")
    if i:
        await churn.publish(old, "revoke")
    start = time.monotonic()
    while time.monotonic() - start < CHECK_WITHIN_S:
        want = [(await probes.send(new, p), "ok") for p in parts]
        if i:
            want += [(await probes.send(old, p), "unknown_key") for p in parts]
        await producer.flush()
        await col.wait(partial(_all_decided, col, [r for r, _ in want]), timeout_s=10)
        if all(_reason(col, r) == reason for r, reason in want):
            return time.monotonic() - start
        await asyncio.sleep(0.3)
    return None


def _all_decided(col: Collector, rids: list[str]) -> bool:
    return all(col.decided(r) for r in rids)


def _reason(col: Collector, rid: str) -> str | None:
    audits = col.by_id.get(rid, {}).get("audit-log", [])
    return str(audits[-1]["reason"]) if audits else None


def _stale_decisions(col: Collector, probes: Probes, timeline: Timeline
                     ) -> list[tuple[str, str, str, str, str]]:
    """(worker, request id, decided at, reason given, reason due) for each probe decision
    that disagrees with the key state the changelog held SETTLE_S before it."""
    out = []
    for rid, key_id in probes.sent.items():
        for audit in col.by_id.get(rid, {}).get("audit-log", []):
            at = datetime.fromisoformat(audit["ts"].replace("Z", "+00:00")).timestamp()
            due = timeline.expected(key_id, at)
            if due is not None and audit["reason"] != due:
                out.append((str(audit["worker"]), rid, audit["ts"], audit["reason"], due))
    return out


def _s(value: float | None) -> str:
    return "NEVER" if value is None else f"{value:5.1f}s"
