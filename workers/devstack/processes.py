"""Start and stop eventguard processes locally: used by `eventguard run`, the
benchmarks and the integration tests, so all three run the real thing."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str = ""  # a worker's or the usage process's web server

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout_s: float = 20.0) -> None:
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)


@dataclass
class Stack:
    logs: Path
    bootstrap: str
    prefix: str = ""
    procs: list[Proc] = field(default_factory=list)

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Proc:
        """An `eventguard ARGS` process."""
        return self.process(name, [sys.executable, "-m", "workers.cli", *args], env)

    def process(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        """Any process, in its own session, logging to `<logs>/<name>.log`."""
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{name}.log"
        full_env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                    "EVENTGUARD_TOPIC_PREFIX": self.prefix, "PYTHONUNBUFFERED": "1",
                    **(env or {})}
        with open(log, "ab") as out:
            popen = subprocess.Popen(
                argv, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=full_env,
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def worker(self, config: Path, name: str = "worker", env: dict[str, str] | None = None,
               web_port: int | None = None) -> Proc:
        """A worker serving /health, /ready and /metrics on loopback (`Proc.url`), on
        `web_port`, or a free port if none."""
        return self._faust("worker", config, name, env, web_port)

    def usage(self, config: Path, name: str = "usage", env: dict[str, str] | None = None,
              web_port: int | None = None) -> Proc:
        """A usage process (`eventguard usage`) serving usage, /health, /ready and /metrics
        on loopback (`Proc.url`), on `web_port`, or a free port if none."""
        return self._faust("usage", config, name, env, web_port)

    def _faust(self, command: str, config: Path, name: str, env: dict[str, str] | None,
               web_port: int | None) -> Proc:
        port = web_port or free_port()
        proc = self._spawn(name, [command, "--config", str(config), "-l", "info",
                                  "--web-host", "127.0.0.1", "--web-bind", "127.0.0.1",
                                  "--web-port", str(port)], env)
        proc.url = f"http://127.0.0.1:{port}"
        return proc

    def ingest(self, config: Path, port: int, name: str = "ingest",
               env: dict[str, str] | None = None, admin_port: int | None = None) -> Proc:
        """The ingest on `port`; its admin listener (when server.admin_token is set) on
        `admin_port`, a free one by default, at `Proc.url`."""
        admin_port = admin_port or free_port()
        proc = self._spawn(name, ["ingest", "--config", str(config), "--port", str(port),
                                  "--admin-port", str(admin_port)], env)
        proc.url = f"http://127.0.0.1:{admin_port}"
        wait_http(f"http://127.0.0.1:{port}/health", proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: Proc, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited; last lines of {proc.log}:\n{proc.tail()}")
        with contextlib.suppress(urllib.error.URLError, OSError), \
                urllib.request.urlopen(url, timeout=2) as resp:
            if resp.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{proc.name} not healthy after {timeout_s:.0f}s; see {proc.log}")
