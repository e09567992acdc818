"""`eventguard ingest --processes N`: N children share one port, SIGTERM stops them all,
and a port that cannot be shared ends the ingest. No broker is needed: without Kafka
the ingest still answers (503)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from workers.devstack.processes import free_port
from workers.ingest.main import serve
from workers.settings import ConfigError, Settings


def _ingest(tmp_path: Path, port: int, processes: int) -> subprocess.Popen[bytes]:
    config = tmp_path / "eventguard.yaml"
    config.write_text("api_keys: []\n")
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "ingest", "--config", str(config),
         "--port", str(port), "--processes", str(processes)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=b"{}"), timeout=15) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="needs SO_REUSEPORT")
def test_processes_share_the_port_and_stop_together(tmp_path: Path) -> None:
    port = free_port()
    proc = _ingest(tmp_path, port, 2)
    try:
        deadline = time.monotonic() + 30
        while len(_children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        children = _children(proc.pid)
        assert len(children) == 2
        status = 0
        while time.monotonic() < deadline:
            try:
                status = _status(f"http://127.0.0.1:{port}/api/v1/s2s/event?token=t")
                break
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        assert status == 503  # no Kafka: not stored, said so
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        for child in children:
            assert not Path(f"/proc/{child}").exists() or "zombie" in Path(
                f"/proc/{child}/status").read_text().lower()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def test_a_port_taken_by_another_socket_ends_the_ingest(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc = _ingest(tmp_path, taken.getsockname()[1], 2)
        try:
            assert proc.wait(60) != 0
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            assert proc.stdout is not None
            out = proc.stdout.read().decode()
            proc.stdout.close()
    assert "exited at start" in out


def test_processes_need_a_fixed_port_and_at_least_one() -> None:
    with pytest.raises(ConfigError, match="fixed --port"):
        serve(Settings(), "127.0.0.1:1", "127.0.0.1", 0, processes=2)
    with pytest.raises(ConfigError, match="1 or more"):
        serve(Settings(), "127.0.0.1:1", "127.0.0.1", 8001, processes=0)
