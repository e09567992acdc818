"""`eventguard ingest`: run the HTTP ingest against a Kafka cluster.

The admin API and the console listen apart from the public port, on `ingest.admin_bind`
(127.0.0.1:8002; `--admin-port`), and only when `server.admin_token` is set. With
`--processes N` only the first process serves them: console sessions live in memory.

`--processes N` (N > 1) runs N ingest processes on one port: each binds it with
SO_REUSEPORT, so the kernel spreads new connections over them, and each has its
own Kafka producer. The parent only supervises: a child that dies is started
again after a second (one that dies within its first seconds ends the whole
ingest, as a port already taken would), and SIGTERM or SIGINT stops them all.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import tempfile
import time
from dataclasses import replace
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

from aiohttp import web

from workers import log_limits, topics
from workers.console.app import create_admin_app
from workers.ingest.admin import AdminAPI
from workers.ingest.kafka_sink import KafkaSink
from workers.ingest.metrics_page import counter
from workers.ingest.server import METRICS, create_app
from workers.kafka import fixes
from workers.keys.store import KeyStore
from workers.keys.vault import Vault
from workers.settings import RECORD_OVERHEAD, ConfigError, Settings

log = logging.getLogger(__name__)

RAW_EVENTS = "raw-events"
DEFAULT_ADMIN_PORT = 8002


EARLY_EXIT_S = 5.0  # a child that exits this soon after its start ends the ingest
RESTART_DELAY_S = 1.0
STOP_TIMEOUT_S = 30.0


def serve(conf: Settings, bootstrap: str, host: str, port: int, processes: int = 1,
          admin_port: int | None = None, admin_host: str | None = None) -> int:
    check_body_limit(conf.max_body_bytes, topics.load_specs())
    if admin_port is not None or admin_host is not None:
        bind_host, bind_port = conf.admin_bind or ("127.0.0.1", DEFAULT_ADMIN_PORT)
        conf = replace(conf, admin_bind=(admin_host or bind_host, admin_port or bind_port))
    if processes < 1:
        raise ConfigError(f"--processes is {processes}; give 1 or more")
    if processes == 1:
        return _serve(conf, bootstrap, host, port)
    if port == 0:
        raise ConfigError("--processes needs a fixed --port: each process binds the same one")
    return _supervise(conf, bootstrap, host, port, processes)


def _serve(conf: Settings, bootstrap: str, host: str, port: int, reuse_port: bool = False,
           metrics_dir: Path | None = None, admin: bool = True) -> int:
    log_limits.install()
    fixes.install()  # as in the worker: the library check, then the patches
    topic = conf.topic(RAW_EVENTS)
    sink = KafkaSink(bootstrap, topic, conf.max_body_bytes)
    app = create_app(sink, conf, metrics_dir)

    async def close_sink(_: web.Application) -> None:
        await sink.close()

    app.on_cleanup.append(close_sink)
    if admin:
        _admin_listener(app, conf, bootstrap, f"http://{_shown_host(host)}:{port}")
    def serving(_: str) -> None:  # aiohttp calls this once the port is bound, not before
        log.info("ingest: http://%s:%d -> %s on %s%s", host, port, topic, bootstrap,
                 f" (pid {os.getpid()})" if reuse_port else "")

    web.run_app(app, host=host, port=port, print=serving, access_log=None,
                reuse_port=reuse_port or None, loop=new_loop())
    return 0


def _admin_listener(app: web.Application, conf: Settings, bootstrap: str,
                    ingest_url: str) -> None:
    """Start the admin API and the console with the public app, on their own listener."""
    if conf.admin_bind is None or conf.admin_token is None:
        log.info("admin API and console: off (%s)", "ingest.admin_bind is off"
                 if conf.admin_bind is None else "set server.admin_token to turn them on")
        return
    host, port = conf.admin_bind
    store = KeyStore(bootstrap, conf.topic("auth-config"))
    api = AdminAPI(store, conf.admin_token.value, lambda secret: Vault().seal(secret),
                   conf.usage_url)
    metrics = app.get(METRICS)
    admin_app = create_admin_app(api, conf, ingest_url,
                                 counter(metrics) if metrics is not None else None)
    runner = web.AppRunner(admin_app, access_log=None)

    async def start(_: web.Application) -> None:
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        log.info("admin API and console: http://%s:%d/console/ (sign in with "
                 "server.admin_token)", _shown_host(host), port)

    async def stop(_: web.Application) -> None:
        await runner.cleanup()
        await store.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)


def _shown_host(host: str) -> str:
    """A host to print or put in a sample: a wildcard bind is reached on localhost."""
    if host in ("", "0.0.0.0", "::"):
        return "localhost"
    return f"[{host}]" if ":" in host else host


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop when it is installed (a dependency): it answers about
    twice as many requests per CPU second as asyncio's; else asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency, but optional at run time
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _supervise(conf: Settings, bootstrap: str, host: str, port: int, processes: int) -> int:
    ctx = multiprocessing.get_context("fork")  # before any event loop or thread exists
    stopping: list[int] = []
    # Each process writes its request counts here; /metrics in any of them adds them up.
    metrics_dir = Path(tempfile.mkdtemp(prefix="eventguard-ingest-metrics-"))

    def stop(signum: int, _: FrameType | None) -> None:
        stopping.append(signum)

    def start(n: int) -> tuple[BaseProcess, float]:
        # Only the first serves the admin listener: console sessions live in its memory.
        child = ctx.Process(target=_child, args=(conf, bootstrap, host, port, metrics_dir,
                                                 n == 0), daemon=False)
        child.start()
        return child, time.monotonic()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("ingest: %d processes on http://%s:%d (SO_REUSEPORT)", processes, host, port)
    children = [start(n) for n in range(processes)]
    code = 0
    while not stopping:
        multiprocessing.connection.wait([c.sentinel for c, _ in children], timeout=0.5)
        for n, (child, started) in enumerate(children):
            if child.is_alive() or stopping:
                continue
            if time.monotonic() - started < EARLY_EXIT_S:
                log.error("ingest: process %d exited at start (code %s); stopping",
                          child.pid, child.exitcode)
                code = child.exitcode or 1
                stopping.append(0)
                break
            log.warning("ingest: process %d exited (code %s); starting another",
                        child.pid, child.exitcode)
            time.sleep(RESTART_DELAY_S)
            children[n] = start(n)
    for child, _ in children:
        if child.is_alive() and child.pid is not None:
            os.kill(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for child, _ in children:
        child.join(max(0.0, deadline - time.monotonic()))
        if child.is_alive():
            child.kill()
            child.join()
    shutil.rmtree(metrics_dir, ignore_errors=True)
    return code


def _child(conf: Settings, bootstrap: str, host: str, port: int, metrics_dir: Path,
           admin: bool) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # aiohttp installs its own on the loop
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    raise SystemExit(_serve(conf, bootstrap, host, port, reuse_port=True,
                            metrics_dir=metrics_dir, admin=admin))


def check_body_limit(max_body_bytes: int, specs: list[topics.TopicSpec]) -> None:
    """Refuse a body limit the raw-events topic cannot hold: Kafka would refuse
    such records, and clients would get an error instead of a clear 413."""
    spec = next((s for s in specs if s.name == RAW_EVENTS), None)
    if spec is None or "max.message.bytes" not in spec.config:
        return  # no topic specs here (an installed package): Kafka's answer will tell
    topic_max = int(spec.config["max.message.bytes"])
    fits = topic_max - RECORD_OVERHEAD
    if max_body_bytes > fits:
        raise ConfigError(
            f"ingest.max_body_bytes is {max_body_bytes}, but {RAW_EVENTS} takes records up to "
            f"{topic_max} bytes (max.message.bytes in topics/{RAW_EVENTS}.yaml), of which "
            f"{RECORD_OVERHEAD} are kept for headers: lower max_body_bytes to {fits} or less, "
            f"or raise max.message.bytes in topics/ and run `eventguard topics apply`")
