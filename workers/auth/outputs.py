"""The JSON shapes written to accepted-events, rejected-events and audit-log."""

from __future__ import annotations

from typing import Any

import orjson

from workers.auth.decision import Decision
from workers.auth.reasons import Reason
from workers.auth.request import RawRequest

MAX_DEPTH = 254  # the deepest nesting orjson can write
MAX_EVENT_TYPE = 256  # an event type is a sender's string; the audit keeps its start


def bounded(req: RawRequest, d: Decision, limit: int) -> tuple[Decision, bytes]:
    """The output record for `d`; a compact `payload_too_large` one over `limit` bytes,
    or a compact `malformed_event` one for an event too deep to write.

    A record over the topic's max.message.bytes would fail in the producer and
    hold up its partition; the compact record drops the event, keeps the rest.
    """
    try:
        value = accepted(req, d) if d.accepted else rejected(req, d)
    except orjson.JSONEncodeError:
        # orjson reads 1024 levels of nesting but writes only 254.
        compact = Decision(d.request_id, Reason.MALFORMED_EVENT,
                           f"event nested deeper than {MAX_DEPTH} levels", d.key_id, d.method,
                           event_type=d.event_type)
        return compact, rejected(req, compact)
    if len(value) <= limit:
        return d, value
    compact = Decision(d.request_id, Reason.PAYLOAD_TOO_LARGE,
                       f"output record of {len(value)} bytes > {limit}", d.key_id, d.method,
                       event_type=d.event_type)
    return compact, rejected(req, compact)


def accepted(req: RawRequest, d: Decision) -> bytes:
    return orjson.dumps({
        "request_id": d.request_id,
        "received_at": req.received_at,
        "auth": {
            "key_id": d.key_id,
            "method": d.method,  # str enums: orjson writes their values
            "identity": d.identity,
            "subject": d.subject,
        },
        "context": req.context,
        "event": d.event,
    })


def rejected(req: RawRequest, d: Decision) -> bytes:
    record: dict[str, Any] = {
        "request_id": d.request_id,
        "received_at": req.received_at,
        "reason": d.reason,
        "detail": d.detail,
    }
    if d.key_id is not None:
        record["key_id"] = d.key_id
    record["context"] = req.context
    if d.event is not None:
        record["event"] = d.event
    return orjson.dumps(record)


def audit(
    req: RawRequest, d: Decision, *, ts: str, duration_us: int, lag_ms: int | None, worker: str
) -> bytes:
    return orjson.dumps({
        "request_id": d.request_id,
        "ts": ts,
        "decision": "accepted" if d.accepted else "rejected",
        "reason": d.reason,
        "detail": d.detail,
        "key_id": d.key_id,
        "method": d.method,
        "endpoint": req.endpoint,
        "event_type": d.event_type[:MAX_EVENT_TYPE] if d.event_type else d.event_type,
        "origin": req.origin,
        "ip": req.ip,
        "path": req.path,
        "duration_us": duration_us,
        "lag_ms": lag_ms,
        "worker": worker,
    })
