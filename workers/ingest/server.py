"""The HTTP ingest: validate, write to raw-events, answer. Nothing else.

Kafka access is injected (`Sink`), so the routes are testable without a broker
and the status codes stay honest: 200 only after Kafka acknowledged the record.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol

import orjson
from aiohttp import web

from workers.ingest import metadata
from workers.ingest.admin import AdminAPI
from workers.ingest.responses import error, json

log = logging.getLogger(__name__)

CLIENT_PATHS = frozenset({"/api/v1/event", "/api/v1/events"})
S2S_PATHS = frozenset({"/api/v1/s2s/event", "/api/v1/s2s/events"})
ALLOW_HEADERS = ("Content-Type, X-Auth-Token, Authorization, api_key, X-Access-Key, "
                 "X-Timestamp, X-Nonce, X-Signature, X-Request-Id")
RETRY_AFTER_S = "5"


class Sink(Protocol):
    async def send(self, record: metadata.RawRecord) -> None:
        """Return once Kafka acknowledged the record; raise SinkUnavailable otherwise."""

    async def healthy(self) -> bool: ...


class SinkUnavailable(RuntimeError):
    pass


SINK: web.AppKey[Sink] = web.AppKey("sink")
LIMIT = web.AppKey("max_body_bytes", int)


def create_app(sink: Sink, max_body_bytes: int, admin: AdminAPI | None = None
               ) -> web.Application:
    app = web.Application(client_max_size=max_body_bytes, middlewares=[_cors])
    app[SINK] = sink
    app[LIMIT] = max_body_bytes
    app.router.add_get("/health", _health)
    if admin is not None:
        admin.add_routes(app)  # before the catch-all POST route
    app.router.add_route("OPTIONS", "/{tail:.*}", _preflight)
    app.router.add_post("/{tail:.*}", _event)
    return app


def endpoint_for(path: str) -> str | None:
    if path in S2S_PATHS:
        return "s2s"
    if path in CLIENT_PATHS or path.startswith("/api."):
        return "client"
    return None


async def _event(request: web.Request) -> web.Response:
    endpoint = endpoint_for(request.path)
    if endpoint is None:
        return error(404, f"no endpoint {request.path}; post events to /api/v1/event "
                           "or /api/v1/s2s/event")
    limit = request.app[LIMIT]
    if request.content_length is not None and request.content_length > limit:
        return error(413, f"body is {request.content_length} bytes; the limit is {limit}")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return error(413, f"body is over the limit of {limit} bytes")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        problem = "not valid UTF-8" if "UTF-8" in str(exc) else "not valid JSON"
        return error(400, f"body is {problem}; send a JSON object or array")
    request_id = uuid.uuid4().hex
    record = metadata.build(
        endpoint=endpoint,
        request_id=request_id,
        received_at=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        body=body,
        doc=doc,
        query=list(request.query.items()),
        headers={k.lower(): v for k, v in request.headers.items()},
        path=request.path,
        ip=_client_ip(request),
    )
    try:
        await request.app[SINK].send(record)
    except SinkUnavailable:
        return error(503, "Kafka is unavailable; the event was not stored, retry later",
                      {"Retry-After": RETRY_AFTER_S})
    # The request id, not the record key: a signed request is keyed by its nonce.
    return json({"status": "ok", "request_id": request_id})


async def _health(request: web.Request) -> web.Response:
    if await request.app[SINK].healthy():
        return json({"status": "ok"})
    return error(503, "Kafka is unreachable", {"Retry-After": RETRY_AFTER_S})


async def _preflight(request: web.Request) -> web.Response:
    return web.Response(status=200, headers={
        "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
        "Access-Control-Allow-Headers": ALLOW_HEADERS,
        "Access-Control-Max-Age": "86400",
    })


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    origin = request.headers.get("Origin")
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Vary"] = "Origin"
    return response


def _client_ip(request: web.Request) -> str | None:
    real = request.headers.get("X-Real-IP")
    if real:
        return real.strip()
    forwarded = request.headers.get("X-Forwarded-For")
    if forwarded:
        return forwarded.split(",", 1)[0].strip()
    return request.remote
