"""Before a Faust process (`worker`, `usage`) starts: its topics exist and its Kafka user
may see them.

Refused, it is told so in one line (cli/main.py) instead of a Faust traceback. With a
topic missing it waits, checking with a backoff, while its web port answers /health 200
and /ready 503 with the reason; then Faust starts on the topics as they now are. A
broker that cannot be reached is left to Faust, which waits for it.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiokafka.errors import KafkaError

from workers import kafka_security, topic_access

CHECK_TIMEOUT_S = 15.0


def run(bootstrap: str, topics: list[str], web_port: int | None, web_bind: str) -> None:
    asyncio.run(_run(bootstrap, topics, web_port, web_bind))


async def _run(bootstrap: str, topics: list[str], web_port: int | None, web_bind: str) -> None:
    client_logs = logging.getLogger("aiokafka")
    level = client_logs.level
    client_logs.setLevel(logging.WARNING)  # not "Authenticated as ..." at every check
    try:
        await _checked(bootstrap, topics, web_port, web_bind)
    finally:
        client_logs.setLevel(level)


async def _checked(bootstrap: str, topics: list[str], web_port: int | None, web_bind: str
                   ) -> None:
    try:
        absent = await asyncio.wait_for(topic_access.missing(bootstrap, topics),
                                        CHECK_TIMEOUT_S)
    except KafkaError as exc:
        if kafka_security.refusal(exc) is not None:
            raise
        return
    except TimeoutError:
        return
    if not absent:
        return
    page = _Waiting(str(topic_access.MissingTopics(absent)))
    runner = await page.serve(web_bind, web_port) if web_port is not None else None
    try:
        await topic_access.wait_for(bootstrap, topics, page.update)
    finally:
        if runner is not None:
            await runner.cleanup()  # Faust's own web server takes the port next


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
