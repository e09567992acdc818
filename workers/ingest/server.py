"""The HTTP ingest: validate, write to raw-events, answer. Nothing else.

Kafka access is injected (`Sink`, see sink.py), so the routes are testable
without a broker and the status codes stay honest: 200 only after Kafka
acknowledged the record.

The event route is the hot path (bench: `eventguard bench ingest`): no
middleware (CORS headers are added by the handlers that answer browsers), the
event paths are plain routes (a dict lookup, not a regex), and the answer is
written from bytes.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from workers.ingest import client_ip, metadata
from workers.ingest.metrics_page import (
    CATCH_ALL,
    Handler,
    Wrap,
    as_is,
    counter,
    metrics_off,
    metrics_page,
)
from workers.ingest.responses import error, json
from workers.ingest.sink import Check, RecordTooLarge, Sink, SinkUnavailable, TopicMissing
from workers.log_format import current_request_id
from workers.metrics.ingest import IngestMetrics
from workers.settings import Settings

__all__ = ["Check", "RecordTooLarge", "Sink", "SinkUnavailable", "create_app", "endpoint_for"]

log = logging.getLogger(__name__)

CLIENT_PATHS = frozenset({"/api/v1/event", "/api/v1/events"})
S2S_PATHS = frozenset({"/api/v1/s2s/event", "/api/v1/s2s/events"})
EVENT_PATHS = S2S_PATHS | CLIENT_PATHS
ALLOW_HEADERS = ("Content-Type, X-Auth-Token, Authorization, api_key, X-Access-Key, "
                 "X-Timestamp, X-Nonce, X-Signature, X-Request-Id")
RETRY_AFTER_S = "5"

SINK: web.AppKey[Sink] = web.AppKey("sink")
SETTINGS = web.AppKey("settings", Settings)
TRUSTED = web.AppKey("trusted_proxies", tuple)
METRICS = web.AppKey("metrics", IngestMetrics)  # absent when metrics are off


def create_app(sink: Sink, settings: Settings | None = None,
               metrics_dir: Path | None = None) -> web.Application:
    """The ingest's public routes. `metrics_dir`: a folder shared by the processes of
    `--processes N`, so that /metrics in any of them counts all of them. The admin API
    and the console are not here: they have a listener of their own (workers/console)."""
    conf = settings or Settings()
    app = web.Application(client_max_size=conf.max_body_bytes)
    app[SINK] = sink
    app[SETTINGS] = conf
    app[TRUSTED] = client_ip.networks(conf.trusted_proxies)
    counted: Wrap = as_is
    page: Handler = metrics_off
    if conf.metrics_enabled:
        metrics = app[METRICS] = IngestMetrics()
        counted = counter(metrics)
        page = metrics_page(app, metrics, metrics_dir)
    app.router.add_get("/health", counted("/health", _health))
    app.router.add_get("/ready", counted("/ready", _ready))
    app.router.add_get("/metrics", counted("/metrics", page))
    for prefix in ("/api/v1/admin", "/console"):  # before the catch-all POST route
        app.router.add_route("*", prefix + "{tail:(/.*)?}", counted(prefix, _not_here))
    for path in (*S2S_PATHS, *CLIENT_PATHS):
        app.router.add_post(path, _event)  # plain routes: found without the regex
    app.router.add_route("OPTIONS", "/{tail:.*}", counted("OPTIONS", _preflight))
    app.router.add_post("/{tail:.*}", _event)
    return app


def endpoint_for(path: str) -> str | None:
    if path in S2S_PATHS:
        return "s2s"
    if path in CLIENT_PATHS or path.startswith("/api."):
        return "client"
    return None


async def _event(request: web.Request) -> web.Response:
    # The hot path counts itself: a wrapper (metrics_page.counter) is one more coroutine.
    metrics = request.app.get(METRICS)
    if metrics is None:
        return _cors(request, await _store(request, None))
    path = request.path
    route = path if path in EVENT_PATHS else (
        "/api.{name}" if path.startswith("/api.") else CATCH_ALL)
    try:
        response = _cors(request, await _store(request, metrics))
    except web.HTTPException as exc:
        metrics.requests[route, exc.status] += 1
        raise
    except Exception:
        metrics.requests[route, 500] += 1
        raise
    metrics.requests[route, response.status] += 1
    return response


async def _store(request: web.Request, metrics: IngestMetrics | None) -> web.Response:
    endpoint = endpoint_for(request.path)
    if endpoint is None:
        return error(404, f"no endpoint {request.path}; post events to /api/v1/event "
                           "or /api/v1/s2s/event")
    conf = request.app[SETTINGS]
    limit = conf.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return error(413, f"body is {request.content_length} bytes; the limit is {limit}")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return error(413, f"body is over the limit of {limit} bytes")
    except web.RequestPayloadError as exc:
        # Content-Encoding that does not match the body, a broken chunked stream, ...
        return _closing(error(400, f"body could not be read: {_payload_problem(exc)}"))
    if metrics is not None:
        metrics.body_bytes.observe(len(body))
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        problem = "not valid UTF-8" if "UTF-8" in str(exc) else "not valid JSON"
        return error(400, f"body is {problem}; send a JSON object or array")
    events = batch_size(doc)
    if events > conf.max_batch_events:
        return error(413, f"batch has {events} events; the limit is {conf.max_batch_events} "
                          "(ingest.max_batch_events); split it")
    request_id = os.urandom(16).hex()
    try:
        record = metadata.build(
            endpoint=endpoint,
            request_id=request_id,
            received_at=utc_now(),
            body=body,
            doc=doc,
            query=list(request.query.items()),
            headers=metadata.headers_once(request.headers.items()),
            path=request.path,
            ip=client_ip.client_ip(request.remote, request.headers.get("X-Real-IP"),
                                   request.headers.get("X-Forwarded-For"), request.app[TRUSTED]),
        )
    except metadata.Ambiguous as exc:
        return error(400, str(exc))
    started = time.perf_counter()
    # What the sink logs while it stores this request names it (JSON logs: `request_id`).
    named = current_request_id.set(request_id)  # a context manager costs more per request
    try:
        await request.app[SINK].send(record)
    except RecordTooLarge:
        return error(413, "the request is too large for the raw-events topic; send less per "
                          "request")
    except SinkUnavailable as exc:
        if metrics is not None:
            metrics.unavailable += 1
        why = (f"{exc}; the event was not stored" if isinstance(exc, TopicMissing)
               else "Kafka is unavailable; the event was not stored, retry later")
        return error(503, why, {"Retry-After": RETRY_AFTER_S})
    finally:
        current_request_id.reset(named)
    if metrics is not None:
        metrics.ack_seconds.observe(time.perf_counter() - started)
    # The request id, not the record key: a signed request is keyed by its nonce.
    return web.Response(body=b'{"status":"ok","request_id":"%s"}' % request_id.encode(),
                        content_type="application/json")


_second = (-1, "")  # the last whole second formatted, and its text


def utc_now() -> str:
    """The time now as `2026-01-01T12:00:00.123Z` (UTC, milliseconds)."""
    global _second
    now = time.time()
    whole = int(now)
    if whole != _second[0]:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int((now - whole) * 1000):03d}Z"


def batch_size(doc: Any) -> int:
    """How many events the worker will decide for this body (as workers.auth.events reads it)."""
    if isinstance(doc, list):
        return len(doc)
    if isinstance(doc, dict):
        for name in ("events", "batch"):
            if isinstance(doc.get(name), list):
                return len(doc[name])
    return 1


def _payload_problem(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    name = type(cause).__name__
    if name == "ContentEncodingError":
        return "it does not match its Content-Encoding"
    return f"{name}"


def _closing(response: web.Response) -> web.Response:
    response.force_close()  # the rest of the stream cannot be trusted
    return response


async def _health(request: web.Request) -> web.Response:
    """Liveness and Kafka: the process answers, reaches Kafka, and its producer works."""
    check = await request.app[SINK].check()
    return _cors(request, _checked(check.reachable, check))


async def _ready(request: web.Request) -> web.Response:
    """Would a POST be stored now: Kafka reachable, raw-events led, writes succeeding."""
    check = await request.app[SINK].check()
    return _cors(request, _checked(check.ready, check))


async def _not_here(request: web.Request) -> web.Response:
    return error(404, "the admin API and the console are not on this port: they listen on "
                      "ingest.admin_bind (127.0.0.1:8002 by default)")


def _checked(ok: bool, check: Check) -> web.Response:
    if ok:
        return json({"status": "ok"})
    return error(503, check.problem or "Kafka is unreachable", {"Retry-After": RETRY_AFTER_S})


async def _preflight(request: web.Request) -> web.Response:
    return _cors(request, web.Response(status=200, headers={
        "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
        "Access-Control-Allow-Headers": ALLOW_HEADERS,
        "Access-Control-Max-Age": "86400",
    }))


def _cors(request: web.Request, response: web.Response) -> web.Response:
    """Echo the request's Origin (two: answered 400, and not echoed)."""
    sent = request.headers.getall("Origin", ())
    if len(sent) == 1 and sent[0]:
        _allow(response, sent[0])
    return response


def _allow(response: web.Response, origin: str) -> None:
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Credentials"] = "true"
    response.headers["Vary"] = "Origin"

