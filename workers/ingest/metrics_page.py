"""The ingest's request counter and its /metrics page.

The event routes are the hot path, so there is no middleware: the event handler
counts itself (server.py), every other handler is wrapped when it is registered,
and a response costs one Counter increment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from workers.ingest.responses import error
from workers.metrics import exposition
from workers.metrics.ingest import IngestCollector, IngestMetrics, SharedCounts

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Wrap = Callable[[str, Handler], Handler]  # (route pattern, handler) -> counted handler

CATCH_ALL = "/{tail}"  # the label of a POST to no endpoint (/api.{name} for Jitsu's)


def as_is(route: str, handler: Handler) -> Handler:
    return handler


def counter(metrics: IngestMetrics) -> Wrap:
    """Count each response by (route pattern, status): never the raw path, which a
    client chooses, so the label set stays as small as the route table."""
    requests = metrics.requests

    def wrap(route: str, handler: Handler) -> Handler:
        async def counted(request: web.Request) -> web.StreamResponse:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                requests[route, exc.status] += 1
                raise
            except Exception:
                requests[route, 500] += 1
                raise
            requests[route, response.status] += 1
            return response

        return counted

    return wrap


def _source(app: web.Application, metrics: IngestMetrics, folder: Path | None
            ) -> Callable[[], IngestMetrics]:
    if folder is None:
        return lambda: metrics
    shared = SharedCounts(folder, metrics)
    tasks: list[asyncio.Task[None]] = []

    async def start(_: web.Application) -> None:
        tasks.append(asyncio.ensure_future(shared.run()))

    async def stop(_: web.Application) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return shared.combined


async def metrics_off(request: web.Request) -> web.StreamResponse:
    return error(404, "metrics are off (metrics.enabled / EVENTGUARD_METRICS)")


def metrics_page(app: web.Application, metrics: IngestMetrics, folder: Path | None
                 ) -> Handler:
    """/metrics: this process's counts, or with `folder` every process's (--processes N)."""
    registry = exposition.registry(IngestCollector(_source(app, metrics, folder)))

    async def page(request: web.Request) -> web.StreamResponse:
        return web.Response(body=exposition.render(registry),
                            headers={"Content-Type": exposition.CONTENT_TYPE})

    return page
