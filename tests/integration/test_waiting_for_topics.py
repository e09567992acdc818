"""A worker started before its topics exist waits for them: one line, no spin, /ready 503
with the reason, and it decides without a restart once `eventguard topics apply` runs
(issue 19, part 1)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson

from tests.integration.conftest import PREFIX, write_config
from workers import settings
from workers.cli.decisions import Collector
from workers.devstack.processes import Proc, Stack, free_port, wait_http
from workers.paths import cache_dir

TICKS = os.sysconf("SC_CLK_TCK")


def _ready(proc: Proc) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(proc.url + "/ready", timeout=2) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as answer:
        return answer.code, json.loads(answer.read())


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def test_a_worker_waits_for_its_topics_and_then_decides(bootstrap: str, tmp_path: Path) -> None:
    prefix = f"{PREFIX.rstrip('.')}-late."
    secret = f"late-{secrets.token_hex(8)}"
    config = write_config(tmp_path / "eventguard.yaml", [{"id": "late", "server_secret": secret}])
    stack = Stack(cache_dir() / "test-logs" / prefix.rstrip("."), bootstrap, prefix)
    try:
        worker = stack.worker(config)
        deadline = time.monotonic() + 60
        while True:
            if not worker.alive():
                raise AssertionError(f"the worker exited:\n{worker.tail()}")
            try:
                status, body = _ready(worker)
                break
            except (urllib.error.URLError, OSError):
                assert time.monotonic() < deadline, worker.tail()
                time.sleep(0.2)
        assert status == 503
        assert str(body["reason"]).startswith(f"no topics {prefix}accepted-events, ")
        assert "`eventguard topics apply` creates them" in str(body["reason"])

        before, started = _cpu_seconds(worker.popen.pid), time.monotonic()
        time.sleep(10)
        share = (_cpu_seconds(worker.popen.pid) - before) / (time.monotonic() - started)
        print(f"\n[waiting] worker CPU while its topics are missing: {share:.1%} of a core")
        assert share < 0.10
        assert worker.alive()
        waiting = [line for line in worker.log.read_text().splitlines() if "waiting: " in line]
        assert len(waiting) == 1, waiting  # one line, however long it waits

        subprocess.run([sys.executable, "-m", "workers.cli", "topics", "apply", "--config",
                        str(config)], check=True, capture_output=True, timeout=120,
                       env={**os.environ, settings.BOOTSTRAP_ENV: bootstrap,
                            settings.PREFIX_ENV: prefix})
        wait_http(worker.url + "/ready", worker, 120.0)
        port = free_port()
        stack.ingest(config, port)
        assert _decided(bootstrap, prefix, port, secret) == "ok"
    finally:
        stack.stop()


def _decided(bootstrap: str, prefix: str, port: int, secret: str) -> str:
    async def go() -> str:
        async with Collector(bootstrap, prefix=prefix) as collector:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/v1/s2s/event?token={secret}",
                data=b'{"event_type":"page"}', method="POST")
            with urllib.request.urlopen(request, timeout=10) as answer:
                request_id = orjson.loads(answer.read())["request_id"]
            got = await collector.decision(request_id, timeout_s=60)
            return str(got["audit-log"][0]["reason"])
    return asyncio.run(go())


def test_the_ingest_names_a_missing_raw_events_topic_in_its_503(bootstrap: str,
                                                                tmp_path: Path) -> None:
    prefix = f"{PREFIX.rstrip('.')}-noraw."
    config = write_config(tmp_path / "eventguard.yaml", [{"id": "k", "server_secret": "s"}])
    stack = Stack(cache_dir() / "test-logs" / prefix.rstrip("."), bootstrap, prefix)
    port = free_port()
    try:
        stack.ingest(config, port)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/s2s/event?token=s",
                                         data=b'{"event_type":"page"}', method="POST")
        for _ in range(2):  # the first request asks Kafka; the next one knows
            try:
                urllib.request.urlopen(request, timeout=30)
                raise AssertionError("a 2xx for an event that could not be stored")
            except urllib.error.HTTPError as answer:
                assert answer.code == 503 and answer.headers["Retry-After"]
                assert orjson.loads(answer.read())["error"] == (
                    f"topic {prefix}raw-events does not exist; `eventguard topics apply` "
                    "creates it; the event was not stored")
    finally:
        stack.stop()
