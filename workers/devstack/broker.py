"""The embedded development broker: a real single-node Apache Kafka (KRaft).

Jars come from Maven Central through `pom.xml` beside this file and are cached
under `<cache>/kafka/`, so a second start downloads nothing. The broker runs in
its own session and survives the command that started it; its pid and ports
live in a small state file so `stop` only ever signals the process we started.

The module-level functions run the default broker (`<cache>/kafka`, or
$EVENTGUARD_KAFKA_HOME). `Broker(home)` runs another one beside it, with its
own data, ports and log but the same jars: the chaos tests kill and restart
theirs without disturbing the shared one.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from workers.paths import cache_dir

HERE = Path(__file__).resolve().parent
KAFKA_VERSION = "3.9.1"
READY_LINE = "Kafka Server started"
HEAP = ("-Xms256m", "-Xmx512m")


class BrokerError(RuntimeError):
    """The embedded broker could not be provisioned, started or stopped."""


@dataclass(frozen=True)
class BrokerState:
    pid: int
    port: int
    controller_port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


HOME_ENV = "EVENTGUARD_KAFKA_HOME"


def home() -> Path:
    """The default broker's folder: $EVENTGUARD_KAFKA_HOME, else `<cache>/kafka`."""
    override = os.environ.get(HOME_ENV)
    return Path(override) if override else jars_home()


def jars_home() -> Path:
    return cache_dir() / "kafka"


def lib_dir() -> Path:
    """The jars, shared by every broker whatever its home."""
    return jars_home() / f"lib-{KAFKA_VERSION}"


def log_file() -> Path:
    return Broker().log_file


def provision(quiet: bool = True) -> Path:
    """Resolve the broker's jars with Maven once; later calls are no-ops."""
    marker = lib_dir() / ".complete"
    if marker.exists():
        return lib_dir()
    if shutil.which("mvn") is None:
        raise BrokerError("Maven (mvn) is not on PATH; install Maven 3.8+ and Java 17.")
    lib_dir().mkdir(parents=True, exist_ok=True)
    cmd = [
        "mvn", "-B", "-f", str(HERE / "pom.xml"),
        f"-Dkafka.version={KAFKA_VERSION}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={lib_dir()}",
        "-DincludeScope=runtime",
    ]
    if quiet:
        cmd.insert(1, "-q")
    print(f"eventguard: fetching Apache Kafka {KAFKA_VERSION} jars from Maven Central (once)...")
    done = subprocess.run(cmd, capture_output=quiet, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stdout or "")[-2000:] + (done.stderr or "")[-2000:]
        raise BrokerError(f"Maven could not fetch the Kafka jars (exit {done.returncode}):\n{tail}")
    marker.touch()
    return lib_dir()


def status() -> BrokerState | None:
    """The running default broker we started, or None."""
    return Broker().status()


def start(timeout_s: float = 120.0) -> BrokerState:
    """Start the default broker unless it already runs; return once it serves requests."""
    return Broker().start(timeout_s)


def stop(timeout_s: float = 30.0) -> bool:
    """Stop the default broker we started. Returns False when none was running."""
    return Broker().stop(timeout_s)


class Broker:
    """One embedded broker: its data, ports, log and state file live under `home`.

    Brokers with different homes run side by side (a test can kill and restart
    its own without touching the shared one); all use the same cached jars.
    A restarted broker keeps its data and, when they are free, its ports.
    """

    heap = HEAP

    def __init__(self, home_dir: Path | None = None) -> None:
        self.home = Path(home_dir) if home_dir is not None else home()

    @property
    def log_file(self) -> Path:
        return self.home / "broker.log"

    @property
    def _state_file(self) -> Path:
        return self.home / "broker.json"

    def status(self) -> BrokerState | None:
        """The running broker we started, or None."""
        try:
            raw = json.loads(self._state_file.read_text())
            state = BrokerState(int(raw["pid"]), int(raw["port"]), int(raw["controller_port"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not _alive(state.pid) or not _port_open(state.port):
            return None
        return state

    def start(self, timeout_s: float = 120.0) -> BrokerState:
        """Start the broker unless it already runs; return once it serves requests."""
        running = self.status()
        if running is not None:
            return running
        return self.launch().ready(timeout_s)

    def launch(self) -> Launch:
        """Start the JVM and return at once: the nodes of a cluster become ready only
        together (a controller quorum needs a majority), so each is launched first."""
        self._stop_stale()
        lib = provision()
        self.home.mkdir(parents=True, exist_ok=True)
        port, cport = self._ports()
        props = self._write_properties(port, cport)
        self._format_storage(lib, props)
        log = self.log_file
        offset = log.stat().st_size if log.exists() else 0
        tmp = self.home / "tmp"
        tmp.mkdir(exist_ok=True)
        cmd = [
            _java(), *self.heap, "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{HERE / 'log4j.properties'}",
            f"-DZstdTempFolder={tmp}", f"-Dorg.xerial.snappy.tempdir={tmp}",
            "-cp", f"{lib}/*", "kafka.Kafka", str(props),
        ]
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=self.home,
            )
        state = BrokerState(proc.pid, port, cport)
        self._state_file.write_text(json.dumps(state.__dict__))
        return Launch(self, proc, state, offset)

    def stop(self, timeout_s: float = 30.0, kill: bool = False) -> bool:
        """Stop the broker we started (SIGTERM, or SIGKILL at once with `kill`).

        Returns False when none was running. The data stays: `start` resumes it.
        """
        try:
            pid = int(json.loads(self._state_file.read_text())["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return False
        stopped = False
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL if kill else signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
            stopped = True
        self._state_file.unlink(missing_ok=True)
        return stopped

    def _stop_stale(self) -> None:
        # A state file whose broker no longer answers: make sure it is really gone.
        if self._state_file.exists():
            self.stop(timeout_s=10.0)

    def _ports(self) -> tuple[int, int]:
        # Reuse the last ports when free: clients that cached the address keep working.
        previous = self.home / "ports.json"
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            raw = json.loads(previous.read_text())
            port, cport = int(raw["port"]), int(raw["controller_port"])
            if not _port_open(port) and not _port_open(cport):
                return port, cport
        port, cport = _free_port(), _free_port()
        previous.write_text(json.dumps({"port": port, "controller_port": cport}))
        return port, cport

    def _write_properties(self, port: int, cport: int) -> Path:
        data = self.home / "data"
        data.mkdir(parents=True, exist_ok=True)
        props = self.home / "server.properties"
        props.write_text("\n".join([*self._properties(port, cport, data), ""]))
        return props

    def _properties(self, port: int, cport: int, data: Path) -> list[str]:
        return [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{cport}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={data}",
            "num.partitions=1",
            "auto.create.topics.enable=false",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            # Compaction of auth-config should be visible within minutes in dev.
            "log.cleaner.backoff.ms=5000",
        ]

    def _format_storage(self, lib: Path, props: Path) -> None:
        if (self.home / "data" / "meta.properties").exists():
            return
        done = subprocess.run(
            [_java(), "-Xmx256m", "-cp", f"{lib}/*", "kafka.tools.StorageTool", "format",
             "-t", self._cluster_id(), "-c", str(props), "-g", *self._format_arguments()],
            capture_output=True, text=True, check=False,
        )
        if done.returncode != 0:
            raise BrokerError(f"Formatting Kafka storage failed:\n{done.stdout}{done.stderr}")

    def _cluster_id(self) -> str:
        return new_cluster_id()

    def _format_arguments(self) -> list[str]:
        return []


def new_cluster_id() -> str:
    # Kafka's own random ids never start with "-": the storage tool would read one
    # that does as an option (1 start in 64 failed so).
    cluster_id = "-"
    while cluster_id.startswith("-"):
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    return cluster_id


@dataclass
class Launch:
    """A broker JVM just started, not yet serving."""

    broker: Broker
    proc: subprocess.Popen[bytes]
    state: BrokerState
    log_offset: int

    def ready(self, timeout_s: float = 120.0) -> BrokerState:
        """Wait until the broker serves requests; stop it and raise if it does not."""
        log = self.broker.log_file
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerError(
                    f"Kafka exited during start-up (code {self.proc.returncode}). "
                    f"Last lines of {log}:\n{_tail(log, self.log_offset)}"
                )
            if READY_LINE in _read_from(log, self.log_offset) and _port_open(self.state.port):
                return self.state
            time.sleep(0.25)
        self.broker.stop()
        raise BrokerError(f"Kafka did not become ready in {timeout_s:.0f}s; see {log}")


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise BrokerError("Java is not on PATH; install OpenJDK 17.")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _tail(path: Path, offset: int, lines: int = 25) -> str:
    return "\n".join(_read_from(path, offset).splitlines()[-lines:])
