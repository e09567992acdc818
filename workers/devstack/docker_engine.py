"""A Docker engine of the compose test's own, and what it needs on this machine.

`make compose-test` installs Debian's `docker.io`, `mmdebstrap` and `prometheus` (for
`promtool`) when missing, builds Docker Compose v2 from the Go module proxy once (no
registry or download site has it here), and starts `dockerd` on a socket of its own, so
it never touches another engine on the host. Everything it keeps lives under
`<cache dir>/compose/`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from workers.paths import cache_dir

PACKAGES = ("docker.io", "mmdebstrap", "prometheus")
COMPOSE_MODULE = "github.com/docker/compose/v5"
COMPOSE_VERSION = "v5.6.0"  # the newest the Go module proxy serves that builds on go1.26
SOCKET = "/run/eg-docker.sock"
EXEC_ROOT = "/run/eg-docker"


class EngineError(RuntimeError):
    """A set-up step failed; the message names the step and its log."""


def home() -> Path:
    path = cache_dir() / "compose"
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_logged(argv: list[str], log: Path, what: str, env: dict[str, str] | None = None,
               timeout_s: float = 1800, cwd: str | None = None) -> None:
    with open(log, "ab") as out:
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s,
                              env={**os.environ, **(env or {})}, check=False, cwd=cwd)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise EngineError(f"{what} failed (exit {done.returncode}); see {log}:\n{tail}")


def installed(package: str) -> bool:
    """Installed, not merely known: a removed package keeps its config and a dpkg entry."""
    done = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True,
                          text=True)
    return done.returncode == 0 and done.stdout.strip() == "install ok installed"


def missing_packages() -> list[str]:
    return [p for p in PACKAGES if not installed(p)]


def install_packages() -> list[str]:
    """Install the Debian packages that are missing; the ones installed."""
    missing = missing_packages()
    if missing:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        log = home() / "apt.log"
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        run_logged([*sudo, "apt-get", "update", "-qq"], log, "apt-get update", env)
        run_logged([*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends",
                    *missing], log, f"installing {' '.join(missing)}", env)
    return missing


def docker_config() -> Path:
    """A DOCKER_CONFIG of our own, with Compose as its CLI plugin (`docker compose`)."""
    return home() / "docker-config"


def compose_plugin() -> Path:
    return docker_config() / "cli-plugins" / "docker-compose"


def build_compose() -> bool:
    """Build Docker Compose from the Go module proxy, once; True when it was built now."""
    plugin = compose_plugin()
    if plugin.exists():
        return False
    plugin.parent.mkdir(parents=True, exist_ok=True)
    log = home() / "go-build.log"
    # Not `go install module@version`: Compose's go.mod has replace and exclude directives,
    # which only a build inside the module honours.
    run_logged(["go", "mod", "download", f"{COMPOSE_MODULE}@{COMPOSE_VERSION}"], log,
               f"downloading Docker Compose {COMPOSE_VERSION} from the Go module proxy")
    found = subprocess.run(["go", "mod", "download", "-json",
                            f"{COMPOSE_MODULE}@{COMPOSE_VERSION}"],
                           capture_output=True, text=True, check=True)
    source = json.loads(found.stdout)["Dir"]
    ldflags = f"-X {COMPOSE_MODULE}/internal.Version={COMPOSE_VERSION}"
    run_logged(["go", "build", "-trimpath", f"-ldflags={ldflags}", "-o", str(plugin), "./cmd"],
               log, f"building Docker Compose {COMPOSE_VERSION} with Go",
               {"CGO_ENABLED": "0"}, cwd=source)
    return True


@dataclass
class Engine:
    """A running dockerd of ours; `env` points the docker CLI and Compose at it."""

    process: subprocess.Popen[bytes]
    log: Path

    @property
    def env(self) -> dict[str, str]:
        return {"DOCKER_HOST": f"unix://{SOCKET}", "DOCKER_CONFIG": str(docker_config())}

    def docker(self, *args: str, timeout_s: float = 600, check: bool = True
               ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["docker", *args], capture_output=True, text=True,
                              timeout=timeout_s, env={**os.environ, **self.env}, check=False)
        if check and done.returncode != 0:
            raise EngineError(f"docker {' '.join(args[:3])} failed: {done.stderr.strip()}")
        return done


def _answers(env: dict[str, str]) -> bool:
    done = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                          capture_output=True, env={**os.environ, **env}, timeout=20)
    return done.returncode == 0


@contextlib.contextmanager
def engine(timeout_s: float = 60) -> Iterator[Engine]:
    """Start our dockerd, yield it, stop it (its containers stop with it)."""
    data = home() / "docker-data"
    data.mkdir(parents=True, exist_ok=True)
    log = home() / "dockerd.log"
    out = open(log, "ab")  # noqa: SIM115 - open while the engine runs
    process = subprocess.Popen(
        ["dockerd", "-H", f"unix://{SOCKET}", "--exec-root", EXEC_ROOT, "--data-root",
         str(data), "--pidfile", f"{EXEC_ROOT}.pid"],
        stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    running = Engine(process, log)
    try:
        deadline = time.monotonic() + timeout_s
        while not _answers(running.env):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                raise EngineError(f"dockerd did not start; see {log}:\n{tail}")
            time.sleep(0.5)
        yield running
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        out.close()
