"""A fixed-rate HTTP load through the ingest, and the checks on what came out.

The load is open-loop: request n is due at n / rate seconds, whether or not the
earlier ones have been answered (at most `concurrency` in flight; a request that
would exceed that is counted as `skipped`, not queued). Each request's kind
fixes its expected decision, so a wrong or conflicting decision is visible.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import aiohttp
import orjson

from tests.chaos.conftest import ChaosStack
from workers.cli.decisions import Collector

# kind -> (path, expected decision, expected reason); picked round-robin by KINDS_CYCLE
KINDS: dict[str, tuple[str, str, str]] = {
    "ok": ("/api/v1/s2s/event", "accepted", "ok"),
    "unknown_key": ("/api/v1/s2s/event", "rejected", "unknown_key"),
    "origin": ("/api/v1/event", "rejected", "origin_not_allowed"),
}
KINDS_CYCLE = ("ok",) * 7 + ("unknown_key",) * 2 + ("origin",)


@dataclass
class LoadResult:
    rate: float
    duration_s: float = 0.0
    sent: int = 0
    ok: dict[str, str] = field(default_factory=dict)  # request id that got 200 -> kind
    statuses: Counter[str] = field(default_factory=Counter)
    per_second: dict[int, Counter[str]] = field(default_factory=dict)

    def summary(self) -> str:
        achieved = self.sent / self.duration_s if self.duration_s else 0.0
        return (f"load: {self.sent} requests in {self.duration_s:.1f}s "
                f"({achieved:.0f}/s, target {self.rate:.0f}/s), 200s={len(self.ok)}, "
                f"statuses={dict(self.statuses.most_common())}")

    def timeline(self) -> str:
        """Per second: 200s and everything else, to show what a kill did to the clients."""
        out = []
        for sec in sorted(self.per_second):
            c = self.per_second[sec]
            bad = sum(v for k, v in c.items() if k != "200")
            out.append(f"{sec}:{c['200']}" + (f"/{bad}!" if bad else ""))
        return " ".join(out)


class Load:
    def __init__(self, cs: ChaosStack, rate: float, concurrency: int = 200,
                 timeout_s: float = 30.0) -> None:
        self.cs = cs
        self.rate = rate
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.result = LoadResult(rate)
        self._start = 0.0

    async def run(self, duration_s: float, stop: asyncio.Event | None = None) -> LoadResult:
        """Send for `duration_s`, or until `stop` is set, whichever comes first."""
        res = self.result
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        inflight: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            self._start = time.monotonic()
            n = 0
            while ((elapsed := time.monotonic() - self._start) < duration_s
                   and not (stop and stop.is_set())):
                due = int(elapsed * self.rate) + 1
                while n < due:
                    if len(inflight) >= self.concurrency:
                        self._count(n, "skipped")
                    else:
                        task = asyncio.create_task(self._one(session, n))
                        inflight.add(task)
                        task.add_done_callback(inflight.discard)
                    n += 1
                await asyncio.sleep(0.005)
            res.sent = n
            if inflight:
                await asyncio.gather(*inflight)
        res.duration_s = time.monotonic() - self._start
        return res

    def _count(self, n: int, status: str) -> None:
        self.result.statuses[status] += 1
        sec = int(n / self.rate)
        self.result.per_second.setdefault(sec, Counter())[status] += 1

    async def _one(self, session: aiohttp.ClientSession, n: int) -> None:
        kind = KINDS_CYCLE[n % len(KINDS_CYCLE)]
        path = KINDS[kind][0]
        headers = {"X-Auth-Token": self.cs.secrets["load"]}
        if kind == "unknown_key":
            headers = {"X-Auth-Token": "ch-no-such-key"}
        elif kind == "origin":
            headers = {"X-Auth-Token": self.cs.secrets["web"], "Origin": "https://evil.test"}
        body = orjson.dumps({"event_type": "page", "n": n})
        try:
            async with session.post(self.cs.url + path, data=body, headers=headers) as r:
                status = str(r.status)
                if r.status == 200:
                    self.result.ok[(await r.json())["request_id"]] = kind
                else:
                    await r.read()
        except TimeoutError:
            status = "timeout"
        except aiohttp.ClientError as exc:
            status = type(exc).__name__
        self._count(n, status)


class Tracker:
    """Follows a Collector's audit records as they arrive: which request ids are decided,
    and when each worker (`host:pid`) last decided something."""

    def __init__(self, col: Collector) -> None:
        self.col = col
        self._cursor = 0
        self.decided: set[str] = set()
        self.last_seen: dict[str, float] = {}

    def poll(self) -> None:
        raw = self.col.raw
        end = len(raw)
        now = time.monotonic()
        for msg in raw[self._cursor:end]:
            if msg.topic.endswith("audit-log") and msg.value:
                audit = orjson.loads(msg.value)
                self.decided.add(str(audit["request_id"]))
                self.last_seen[str(audit["worker"])] = now
        self._cursor = end

    def backlog(self, ok: Iterable[str]) -> int:
        """Request ids that got a 200 and have no decision yet."""
        self.poll()
        return sum(1 for r in ok if r not in self.decided)


@dataclass
class Verdict:
    """What the output topics say about a set of request ids that got a 200."""

    lost: list[str]
    conflicting: dict[str, list[tuple[str, str]]]
    wrong: dict[str, tuple[str, str, str]]  # rid -> (kind, decision, reason)
    duplicated: dict[str, int]  # rid -> number of audit records, when > 1
    first_copy_by: Counter[str]  # duplicated rids by the worker of their first audit record
    audit_records: int
    by_worker: Counter[str]

    @property
    def extra_audit_records(self) -> int:
        return sum(n - 1 for n in self.duplicated.values())

    def summary(self) -> str:
        return (f"verdict: lost={len(self.lost)} conflicting={len(self.conflicting)} "
                f"wrong={len(self.wrong)} duplicated_ids={len(self.duplicated)} "
                f"extra_audit_records={self.extra_audit_records} "
                f"audit_records={self.audit_records} by_worker={dict(self.by_worker)} "
                f"duplicates_first_decided_by={dict(self.first_copy_by)}")


def missing(col: Collector, rids: Iterable[str]) -> list[str]:
    return [r for r in rids if not col.by_id.get(r, {}).get("audit-log")]


async def drain(col: Collector, rids: Iterable[str], timeout_s: float,
                alive: Callable[[], bool] | None = None) -> tuple[float, list[str]]:
    """Wait until every request id has an audit record; (seconds waited, still missing).

    Gives up early once `alive()` says the processes that should decide are gone."""
    started = time.monotonic()
    left = missing(col, rids)
    last_report = started
    while left and time.monotonic() - started < timeout_s:
        if alive is not None and not alive():
            print("[chaos]   drain: gave up, a worker is gone")
            break
        await asyncio.sleep(0.5)
        left = missing(col, left)
        if time.monotonic() - last_report > 10:
            last_report = time.monotonic()
            print(f"[chaos]   drain: {len(left)} request ids still without an audit record "
                  f"after {last_report - started:.0f}s")
    return time.monotonic() - started, left


def verdict(col: Collector, ok: dict[str, str]) -> Verdict:
    lost, conflicting, wrong, duplicated = [], {}, {}, {}
    by_worker: Counter[str] = Counter()
    first_copy_by: Counter[str] = Counter()
    records = 0
    for rid, kind in ok.items():
        got = col.by_id.get(rid, {})
        audits = got.get("audit-log", [])
        if not audits:
            lost.append(rid)
            continue
        records += len(audits)
        by_worker.update(str(a.get("worker")) for a in audits)
        outcomes = sorted({(str(a["decision"]), str(a["reason"])) for a in audits})
        routed = sorted(t for t in ("accepted-events", "rejected-events") if got.get(t))
        if len(outcomes) > 1 or len(routed) > 1:
            conflicting[rid] = outcomes
        _, decision, reason = KINDS[kind]
        if any(o != (decision, reason) for o in outcomes):
            wrong[rid] = (kind, *outcomes[0])
        if len(audits) > 1:
            duplicated[rid] = len(audits)
            first_copy_by[str(audits[0].get("worker"))] += 1
    return Verdict(lost, conflicting, wrong, duplicated, first_copy_by, records, by_worker)
