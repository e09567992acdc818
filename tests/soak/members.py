"""Workers joining, leaving, stopped, killed and restarted from an empty data dir, and a
sampler that scrapes every live worker's /metrics to find stale windows."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.soak.timeline import Timeline
from workers.devstack.processes import Proc, Stack

# Alternating keeps 3-4 workers: every kind of change, 14 times in 100.
ROTATION = ("join", "sigterm_restart", "leave", "sigkill_restart", "join", "restart_empty",
            "leave")


@dataclass
class Members:
    stack: Stack
    config: Path
    datadir: Path  # the workers' Faust data dir
    env: dict[str, str] = field(default_factory=dict)
    live: dict[str, Proc] = field(default_factory=dict)
    n_started: int = 0

    def start(self, name: str | None = None) -> Proc:
        self.n_started += 1
        name = name or f"w{self.n_started}"
        proc = self.stack.worker(self.config, name=name, env=self.env)
        self.live[name] = proc
        return proc

    def change(self, kind: str) -> str:
        """Make one membership change; returns what was done, for the log."""
        if kind == "join":
            return f"join {self.start().name}"
        name = sorted(self.live)[self.n_started % len(self.live)]
        proc = self.live.pop(name)
        if kind == "sigkill_restart":
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGKILL)
            proc.popen.wait(10)
        else:
            proc.stop()
        if kind == "restart_empty":
            shutil.rmtree(self.datadir, ignore_errors=True)
        if kind != "leave":
            self.start(name)
        return f"{kind} {name}"

    def exited(self) -> list[tuple[str, int | None]]:
        """Live workers that exited by themselves (an exit 70 included), with their codes."""
        gone = [(n, p.popen.poll()) for n, p in self.live.items() if not p.alive()]
        for name, _ in gone:
            self.live.pop(name)
        return gone


async def scrape(session: aiohttp.ClientSession, proc: Proc) -> dict[str, float]:
    async with session.get(proc.url + "/metrics", timeout=aiohttp.ClientTimeout(total=2)) as r:
        text = await r.text()
    out = {}
    for line in text.splitlines():
        if line.startswith("eventguard_") and "{" not in line:
            name, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                out[name] = float(value)
    return out


@dataclass
class Sampler:
    """Every `every_s`: each live worker's readiness and applied key-table offset.

    A stale sample: /ready would say 200 while the worker has not applied an end offset
    the changelog had SETTLE_S ago. Consecutive ones make a stale window."""

    members: Members
    timeline: Timeline
    every_s: float = 0.25
    windows: list[tuple[str, float]] = field(default_factory=list)
    exits: list[tuple[str, int | None]] = field(default_factory=list)  # restarted at once
    samples: int = 0
    stalls: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    _open: dict[str, float] = field(default_factory=dict)

    async def run(self, stop: asyncio.Event) -> None:
        async with aiohttp.ClientSession() as session:
            while not stop.is_set():
                for name, proc in list(self.members.live.items()):
                    try:
                        m = await scrape(session, proc)
                    except (aiohttp.ClientError, TimeoutError, OSError):
                        self._close(name)
                        continue
                    self.samples += 1
                    now = time.time()
                    self.stalls[f"{name}/{proc.popen.pid}"] = m.get(
                        "eventguard_key_table_stalls_total", 0)
                    applied = m.get("eventguard_key_table_offset")
                    stale = (m.get("eventguard_worker_ready") == 1 and applied is not None
                             and applied < self.timeline.end_settled(now))
                    if stale:
                        self._open.setdefault(name, now)
                    else:
                        self._close(name)
                await asyncio.sleep(self.every_s)
        for name in list(self._open):
            self._close(name)

    def _close(self, name: str) -> None:
        began = self._open.pop(name, None)
        if began is not None:
            self.windows.append((name, time.time() - began))

    async def rebalances(self) -> dict[int, float]:
        """Each live worker process's count of rebalances it took part in, by pid."""
        out = {}
        async with aiohttp.ClientSession() as session:
            for proc in list(self.members.live.values()):
                with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
                    out[proc.popen.pid] = (await scrape(session, proc)).get(
                        "eventguard_rebalances_total", 0.0)
        return out

    async def until_ready(self, before: dict[int, float], timeout_s: float) -> float | None:
        """Seconds until every live worker has been through the rebalance the change
        started (its count went past `before`) and says ready; None if one did not in
        time. Without the first part, the survivors of a leave looked ready at once."""
        start = time.monotonic()
        async with aiohttp.ClientSession() as session:
            while time.monotonic() - start < timeout_s:
                for name, code in self.members.exited():  # the supervisor's part
                    self.exits.append((name, code))
                    self.members.start(name)
                done = 0
                for proc in list(self.members.live.values()):
                    with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
                        m = await scrape(session, proc)
                        count = m.get("eventguard_rebalances_total", 0)
                        moved = count > before.get(proc.popen.pid, -1)
                        done += moved and m.get("eventguard_worker_ready") == 1
                if done == len(self.members.live):
                    return time.monotonic() - start
                await asyncio.sleep(0.2)
        return None
