"""HTTP load for `eventguard bench ingest` and `bench latency`: a fixed body POSTed by
N connections for a fixed time, each connection sending its next request when the
last one was answered (closed loop).

`wrk` is used when it is on PATH (a C load generator, so the server, not the load,
is the bottleneck); otherwise a few processes of aiohttp clients. Either way the
result is requests/s, latency percentiles and the count of answers that were not 200.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

# A Jitsu event as @jitsu/sdk-js sends it server-side: ~300 bytes.
EVENT = (b'{"type":"track","event":"Order Completed",'
         b'"messageId":"3f1c2b7e-8a9d-4e5f-9c1b-2a3d4e5f6a7b",'
         b'"anonymousId":"a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d","userId":"user-42",'
         b'"timestamp":"2026-01-01T12:00:00.000Z",'
         b'"properties":{"order_id":"o-1001","total":59.9,"currency":"EUR"},'
         b'"context":{"page":{"url":"https://shop.test/checkout"}}}')

# wrk calls done() once, in the main thread, with the merged results of all threads.
WRK_SCRIPT = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[%s]==]
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("EG %%d %%d %%d %%d %%d %%d %%d %%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect + e.read + e.write + e.timeout, e.status, 0))
end
"""
WRK_LINE = re.compile(rb"^EG (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) \d+$", re.M)


@dataclass(frozen=True)
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # socket errors and timeouts
    not_ok: int  # answers that were not 2xx

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def tool() -> str:
    """Which load generator `run` uses: "wrk" or "aiohttp"."""
    return "wrk" if shutil.which("wrk") else "aiohttp"


def run(url: str, connections: int, seconds: float, body: bytes = EVENT,
        threads: int = 2) -> Result:
    if tool() == "wrk":
        return _wrk(url, connections, seconds, body, threads)
    return _aiohttp(url, connections, seconds, body, max(1, threads))


def _wrk(url: str, connections: int, seconds: float, body: bytes, threads: int) -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(WRK_SCRIPT % body.decode())
        out = subprocess.run(
            ["wrk", f"-t{min(threads, connections)}", f"-c{connections}",
             f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(script), url],
            capture_output=True, check=True, timeout=seconds + 60)
    found = WRK_LINE.search(out.stdout)
    if found is None:
        raise RuntimeError(f"wrk printed no result:\n{out.stdout.decode()}\n{out.stderr.decode()}")
    requests, duration_us, p50, p99, top, errors, status = (int(g) for g in found.groups())
    return Result(requests, duration_us / 1e6, p50 / 1000, p99 / 1000, top / 1000, errors,
                  status)


def _aiohttp(url: str, connections: int, seconds: float, body: bytes, procs: int) -> Result:
    procs = min(procs, connections)
    shares = [connections // procs + (1 if n < connections % procs else 0) for n in range(procs)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(procs) as pool:
        parts = pool.starmap(_client_process, [(url, share, seconds, body) for share in shares])
    latencies = sorted(x for lat, _, _, _ in parts for x in lat)
    not_ok = sum(p[1] for p in parts)
    errors = sum(p[2] for p in parts)
    took = max(p[3] for p in parts)
    if not latencies:
        return Result(not_ok, took, 0.0, 0.0, 0.0, errors, not_ok)
    return Result(len(latencies) + not_ok, took, _pick(latencies, 0.50),
                  _pick(latencies, 0.99), latencies[-1], errors, not_ok)


def _pick(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


Part = tuple[list[float], int, int, float]  # 2xx latencies in ms, other answers, errors, seconds


def _client_process(url: str, connections: int, seconds: float, body: bytes) -> Part:
    return asyncio.run(_clients(url, connections, seconds, body))


async def _clients(url: str, connections: int, seconds: float, body: bytes) -> Part:
    latencies: list[float] = []
    counts = [0, 0]  # answers that were not 2xx, errors
    headers = {"Content-Type": "application/json"}
    start = time.perf_counter()
    deadline = start + seconds

    async def one(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    ok = 200 <= resp.status < 300
            except (aiohttp.ClientError, OSError, TimeoutError):
                counts[1] += 1
                continue
            if ok:
                latencies.append((time.perf_counter() - sent) * 1000)
            else:
                counts[0] += 1

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(one(session) for _ in range(connections)))
    return latencies, counts[0], counts[1], time.perf_counter() - start


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
