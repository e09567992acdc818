"""Chaos suite: real broker, real ingest and worker processes, killed and fed garbage.

Every fixture here is opt-in (no autouse). The broker fixture is session-scoped
and never stops the shared broker (other engineers' runs use it too); each test
gets its own topic prefix (`ch<run>-<test>.`), so its topics, its consumer group
and its records are its own. Logs go to `.cache/test-logs/<prefix>/`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.conftest import write_config
from workers import topics
from workers.cli.decisions import OUTPUT_TOPICS, Collector
from workers.devstack import broker
from workers.devstack.processes import Proc, Stack, free_port
from workers.paths import cache_dir

RUN = f"ch{secrets.token_hex(3)}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "chaos: kills processes or fuzzes inputs on the real broker (make chaos)")
    config.addinivalue_line(
        "markers", "cluster: runs its own 3-node Kafka cluster (make cluster-test)")
    config.addinivalue_line(
        "markers", "soak: membership and key changes for a long time (make soak)")


@pytest.fixture(scope="session")
def chaos_bootstrap() -> Iterator[str]:
    """$KAFKA_BOOTSTRAP_SERVERS, or the embedded broker: stopped at the end if this
    run started it, as tests/integration does."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    started = broker.status() is None
    address = broker.start().bootstrap
    yield address
    asyncio.run(topics.delete_prefixed(address, RUN))
    if started:
        broker.stop()


@dataclass
class ChaosStack:
    """One test's ingest and workers, on topics of its own prefix."""

    bootstrap: str
    prefix: str
    config: Path
    logs: Path
    stack: Stack
    port: int
    secrets: dict[str, str] = field(default_factory=dict)
    ingest_proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ingest(self, name: str = "ingest") -> Proc:
        """Start (or restart) the ingest on this stack's port; returns once /health answers."""
        self.mark(name, "starting ingest")
        self.ingest_proc = self.stack.ingest(self.config, self.port, name=name)
        return self.ingest_proc

    def worker(self, name: str = "worker") -> Proc:
        self.mark(name, "starting worker")
        return self.stack.worker(self.config, name=name)

    def usage(self, name: str = "usage", web_port: int | None = None) -> Proc:
        """A usage process (`eventguard usage`), serving usage on `Proc.url`."""
        self.mark(name, "starting usage process")
        return self.stack.usage(self.config, name=name, web_port=web_port)

    async def wait_ready(self, proc: Proc, timeout_s: float = 120.0) -> float:
        """Seconds until `proc`'s /ready answers 200 (a worker or a usage process)."""
        started = time.monotonic()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as s:
            while time.monotonic() - started < timeout_s:
                if not proc.alive():
                    raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
                try:
                    async with s.get(f"{proc.url}/ready") as r:
                        if r.status == 200:
                            return time.monotonic() - started
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.3)
        raise RuntimeError(f"{proc.name} not ready after {timeout_s:.0f}s; see {proc.log}")

    def mark(self, name: str, what: str) -> None:
        """A line in a process's log, so the logs show what the test did and when."""
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "a") as out:
            out.write(f"=== chaos {time.strftime('%H:%M:%S')} {what} ===\n")

    def collector(self, from_beginning: bool = True,
                  topics: tuple[str, ...] = OUTPUT_TOPICS) -> Collector:
        return Collector(self.bootstrap, topics, from_beginning, prefix=self.prefix)

    def faust_settings(self) -> dict[str, Any]:
        """The worker app's own commit and session settings (read from workers.app in a child
        process, so whatever workers/app.py sets is what the bounds are computed from)."""
        code = ("import json; from workers.app import app; c = app.conf; print(json.dumps({"
                "'broker_commit_interval': float(c.broker_commit_interval),"
                "'broker_commit_every': int(c.broker_commit_every),"
                "'broker_session_timeout': float(c.broker_session_timeout),"
                "'broker_rebalance_timeout': float(c.broker_rebalance_timeout)}))")
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
            env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                 "EVENTGUARD_TOPIC_PREFIX": self.prefix, "EVENTGUARD_CONFIG": str(self.config)})
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    def log_text(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    async def wait_deciding(self, workers: list[Proc], distinct_workers: int = 1,
                            timeout_s: float = 120.0) -> set[str]:
        """Probe through HTTP until `distinct_workers` workers have accepted a probe.

        Returns the `worker` fields seen. Random request ids spread the probes over
        every raw-events partition, so with two workers both show up once both
        hold partitions."""
        seen: set[str] = set()
        deadline = time.monotonic() + timeout_s
        async with self.collector(from_beginning=False) as col, aiohttp.ClientSession() as s:
            while time.monotonic() < deadline:
                for w in workers:
                    if not w.alive():
                        raise RuntimeError(f"{w.name} exited:\n{w.tail()}")
                rids = []
                for _ in range(8):
                    async with s.post(f"{self.url}/api/v1/s2s/event",
                                      data=b'{"event_type":"probe"}',
                                      headers={"X-Auth-Token": self.secrets["load"]}) as r:
                        rids.append((await r.json())["request_id"])
                await col.wait(partial(_all_decided, col, tuple(rids)), timeout_s=3)
                for rid in rids:
                    for audit in col.by_id.get(rid, {}).get("audit-log", []):
                        if audit["reason"] == "ok":
                            seen.add(str(audit["worker"]))
                if len(seen) >= distinct_workers:
                    return seen
                await asyncio.sleep(0.5)
        raise RuntimeError(f"only {len(seen)} of {distinct_workers} workers decided within "
                           f"{timeout_s:.0f}s; see {self.logs}")


def _all_decided(col: Collector, rids: tuple[str, ...]) -> bool:
    return all(col.decided(r) for r in rids)


def prefix_for(test_name: str) -> str:
    short = re.sub(r"[^a-z0-9]+", "-", test_name.lower().removeprefix("test_"))[:24].strip("-")
    return f"{RUN}-{short}."


@pytest.fixture
def chaos_stack(chaos_bootstrap: str, request: pytest.FixtureRequest,
                tmp_path: Path) -> Iterator[ChaosStack]:
    """Topics under a fresh prefix and a config with two keys; no process started yet.

    Every process the test starts through it is stopped at the end."""
    prefix = prefix_for(request.node.name)
    asyncio.run(topics.apply(chaos_bootstrap, topics.load_specs(), prefix))
    sec = {"load": f"ch-load-{secrets.token_hex(8)}", "web": f"ch-web-{secrets.token_hex(8)}"}
    config = write_config(tmp_path / "eventguard.yaml", [
        {"id": "load", "server_secret": sec["load"]},
        {"id": "web", "client_secret": sec["web"], "origins": ["*.shop.test"]},
    ])
    logs = cache_dir() / "test-logs" / prefix.rstrip(".")
    stack = Stack(logs, chaos_bootstrap, prefix)
    cs = ChaosStack(chaos_bootstrap, prefix, config, logs, stack, free_port(), sec)
    print(f"\n[chaos] prefix {prefix} logs {logs}")
    try:
        yield cs
    finally:
        stack.stop()
        asyncio.run(topics.delete_prefixed(chaos_bootstrap, prefix))  # keep the broker lean


def vm_rss_kb(pid: int) -> int:
    """VmRSS of a process, in kB, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")
