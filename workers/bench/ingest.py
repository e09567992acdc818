"""`eventguard bench ingest`: the HTTP ingest's requests/s against a bare aiohttp app.

The real ingest (`eventguard ingest`, a process of its own, on its own topics of
the embedded broker, so every 200 waits for Kafka's acks=all) and a bare aiohttp
app that only reads the body and answers 200 JSON (workers/bench/bare.py) get
the same load, one after the other, at each connection count: a ~300-byte Jitsu
event POSTed to /api/v1/s2s/event?token=... by N keep-alive connections, each
sending its next request when the last was answered. `--processes 2` runs the
ingest with two processes on one port (SO_REUSEPORT) beside the single one.

The load generator is wrk when it is on PATH, else aiohttp clients in a few
processes (which then share the CPU with the servers, and show less).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

from workers import topics
from workers.bench import loadgen
from workers.devstack.processes import Proc, Stack, free_port, wait_http
from workers.paths import cache_dir

PATH = "/api/v1/s2s/event"
WARMUP_S = 2.0


def run(bootstrap: str, seconds: float = 10.0, connections: Sequence[int] = (32, 128),
        processes: Sequence[int] = (1, 2)) -> int:
    run_id = secrets.token_hex(3)
    prefix = f"bench{run_id}-ingest."
    token = secrets.token_urlsafe(16)
    asyncio.run(topics.apply(bootstrap, topics.load_specs(), prefix))
    stack = Stack(cache_dir() / "bench-logs", bootstrap, prefix)
    query = f"{PATH}?token={token}"
    print(f"bench ingest: {loadgen.tool()} as the load generator, {seconds:.0f} s per run, "
          f"a {len(loadgen.EVENT)}-byte event to {PATH}?token=..., on {bootstrap}; "
          f"load average {_load()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.yaml"
        config.write_text(yaml.safe_dump({"api_keys": [{"id": "bench", "server_secret": token}]}))
        try:
            targets = {"bare aiohttp": _bare(stack)}
            for n in processes:
                name = "ingest" if n == 1 else f"ingest, {n} processes"
                targets[name] = _ingest(stack, config, n)
            for url in targets.values():
                loadgen.run(url + query, min(connections), WARMUP_S)
            print(f"  {'conns':>5}  {'server':<22} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
                  f"{'/ bare':>7}", flush=True)
            for conns in connections:
                bare = 0.0
                for name, url in targets.items():
                    got = loadgen.run(url + query, conns, seconds)
                    bare = bare or got.rate
                    note = "" if not (got.errors or got.not_ok) else (
                        f"  ({got.not_ok} not 200, {got.errors} socket errors)")
                    print(f"  {conns:>5}  {name:<22} {got.rate:>9,.0f} {got.p50_ms:>8.1f} "
                          f"{got.p99_ms:>8.1f} {got.rate / bare:>7.2f}{note}", flush=True)
        finally:
            stack.stop()
            asyncio.run(topics.delete_prefixed(bootstrap, prefix))
    return 0


def _bare(stack: Stack) -> str:
    port = free_port()
    proc = stack.process("bench-bare", [sys.executable, "-m", "workers.bench.bare", str(port)])
    return _healthy(proc, port)


def _ingest(stack: Stack, config: Path, processes: int) -> str:
    port = free_port()
    proc = stack.process(f"bench-ingest-{processes}", [
        sys.executable, "-m", "workers.cli", "ingest", "--config", str(config),
        "--port", str(port), "--processes", str(processes)])
    return _healthy(proc, port)


def _healthy(proc: Proc, port: int) -> str:
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health", proc)
    time.sleep(0.5)  # the other processes of a multi-process ingest
    return url


def _load() -> str:
    return f"{os.getloadavg()[0]:.2f}"
