"""Before a Faust process (`worker`, `usage`) starts: its topics exist and its Kafka user
may see them.

Refused, it is told so in one line (workers/cli/failures.py) instead of a Faust traceback. With
Kafka unreachable, a port that is not Kafka's, or a topic missing, it says why in one
line and waits, checking with a backoff, while its web port answers /health 200 and
/ready 503 with the reason; then Faust starts on the cluster as it now is.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket

from aiohttp import web
from aiokafka.errors import KafkaError

from workers import kafka_security, log_limits, topic_access

# The topics a worker reads or writes besides its own (`<app id>-...`).
WORKER_TOPICS = ("raw-events", "auth-config", "nonces", "accepted-events", "rejected-events",
                 "audit-log")
ANSWER_S = 5.0  # a port that accepts TCP but is not Kafka never answers
FIRST_WAIT_S, MAX_WAIT_S = 1.0, 10.0
log = logging.getLogger(__name__)


done = False  # `eventguard worker` checked already: the app module need not again


def run(bootstrap: str, topics: list[str], web_port: int | None, web_bind: str) -> None:
    global done
    if web_port is not None:
        _port_free(web_bind, web_port)
    asyncio.run(_run(bootstrap, topics, web_port, web_bind))
    done = True


def _port_free(host: str, port: int) -> None:
    """Raise OSError(EADDRINUSE) now: Faust's web server would fail after a minute of
    start-up, with a traceback."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OSError(errno.EADDRINUSE, f"the web port {host}:{port} is in use") from None
            raise


async def _run(bootstrap: str, topics: list[str], web_port: int | None, web_bind: str) -> None:
    # Not "Authenticated as ..." nor aiokafka's line per failed attempt: the problem is said
    # here, once.
    with log_limits.silenced("aiokafka"):
        await _checked(bootstrap, topics, web_port, web_bind)


async def _checked(bootstrap: str, topics: list[str], web_port: int | None, web_bind: str
                   ) -> None:
    delay = FIRST_WAIT_S
    said: str | None = None
    page: _Waiting | None = None
    runner: web.AppRunner | None = None
    try:
        while (problem := await _problem(bootstrap, topics)) is not None:
            if problem != said:
                log.warning("waiting: %s; checking again every %.0f s at most", problem,
                            MAX_WAIT_S)
                said = problem
            if page is None:
                page = _Waiting(problem)
                runner = await page.serve(web_bind, web_port) if web_port is not None else None
            page.reason = problem
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_WAIT_S)
    finally:
        if runner is not None:
            await runner.cleanup()  # Faust's own web server takes the port next
    if said is not None:
        log.warning("Kafka and the topics are there; starting")


async def _problem(bootstrap: str, topics: list[str]) -> str | None:
    """Why the process cannot start yet, or None; a refused user raises."""
    try:
        absent = await asyncio.wait_for(topic_access.missing(bootstrap, topics), ANSWER_S)
    except KafkaError as exc:
        if kafka_security.refusal(exc) is not None:
            raise
        return f"cannot reach Kafka at {bootstrap} ({type(exc).__name__})"
    except TimeoutError:
        return (f"no answer from Kafka at {bootstrap} within {ANSWER_S:.0f} s; is that "
                "Kafka's port?")
    return str(topic_access.MissingTopics(absent)) if absent else None


class _Waiting:
    """/health and /ready while the topics are missing, in the worker's own shapes."""

    def __init__(self, reason: str) -> None:
        self.reason: str | None = reason

    async def update(self, reason: str | None) -> None:
        self.reason = reason

    async def serve(self, host: str, port: int) -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/ready", self._ready)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        return runner

    async def _health(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _ready(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "not ready", "reason": self.reason or "starting"},
                                 status=503)
