"""The decision core: a raw request and the current key state in, Decisions out.

Pure: no Kafka, no network, no clock. `now` is handed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workers.auth import events
from workers.auth.authenticate import Authenticated, Refused, authenticate
from workers.auth.decision import Decision
from workers.auth.jwt_check import Invalid, Verified
from workers.auth.policy import policy_for
from workers.auth.reasons import Reason
from workers.auth.request import RawRequest
from workers.auth.state import AuthState

__all__ = ["AuthState", "decide"]


def decide(request: RawRequest, state: AuthState, now: float) -> list[Decision]:
    rid = request.request_id
    if request.unreadable is not None:
        return [Decision(rid, Reason.MALFORMED_EVENT, f"unreadable record ({request.unreadable})")]
    if request.duplicate is not None:  # not from the ingest, which answers such requests 400
        return [Decision(rid, Reason.MALFORMED_EVENT,
                         f"header {request.duplicate} appears more than once")]
    if len(request.body) > state.max_body_bytes:
        return [Decision(rid, Reason.PAYLOAD_TOO_LARGE,
                         f"{len(request.body)} bytes > {state.max_body_bytes}")]
    if request.endpoint is None:
        return [Decision(rid, Reason.MALFORMED_EVENT, "missing or unknown eg-endpoint header")]
    auth = authenticate(request, state, now)
    try:
        parsed, batch = events.parse(request.body)
    except events.MalformedBody as exc:
        if isinstance(auth, Refused):
            return [_refusal(rid, auth)]
        return [Decision(rid, Reason.MALFORMED_EVENT, str(exc), key_id=auth.key.id,
                         method=auth.method)]
    if batch and len(parsed) > state.max_batch_events:
        # One request must not hold up its partition: Jitsu's SDKs send a few hundred.
        reason = auth if isinstance(auth, Refused) else Refused(
            Reason.PAYLOAD_TOO_LARGE,
            f"batch of {len(parsed)} events > max_batch_events {state.max_batch_events}",
            auth.key.id, auth.method)
        return [_refusal(rid, reason)]
    if batch and not parsed:
        reason = auth if isinstance(auth, Refused) else Refused(
            Reason.MALFORMED_EVENT, "empty batch", auth.key.id, auth.method)
        return [_refusal(rid, reason)]
    out = []
    for index, event in enumerate(parsed):
        event_id = f"{rid}:{index}" if batch else rid
        out.append(_decide_event(event_id, event, auth, request, state))
    return out


def _decide_event(
    event_id: str, event: Any, auth: Authenticated | Refused, request: RawRequest,
    state: AuthState,
) -> Decision:
    if not isinstance(event, dict):
        if isinstance(auth, Refused):
            return _refusal(event_id, auth)
        return Decision(event_id, Reason.MALFORMED_EVENT,
                        f"event is a JSON {_json_type(event)}, expected an object",
                        key_id=auth.key.id, method=auth.method)
    clean = events.without_secrets(event)
    etype = events.event_type(clean)
    if isinstance(auth, Refused):
        return _refusal(event_id, auth, clean, etype)
    key = auth.key
    if key.allowed_events and etype not in key.allowed_events:
        return Decision(event_id, Reason.EVENT_NOT_ALLOWED,
                        f"event type {_quote(etype)} not in allowed_events", key.id, auth.method,
                        event=clean, event_type=etype)
    if isinstance(auth.jwt, Invalid):  # a present but invalid JWT is never downgraded
        return Decision(event_id, Reason.JWT_INVALID, auth.jwt.detail, key.id, auth.method,
                        event=clean, event_type=etype)
    verified = auth.jwt if isinstance(auth.jwt, Verified) else None
    reason, identity = policy_for(key.policy, state.policies).decide(
        etype, jwt_valid=verified is not None)
    detail = "" if reason.accepted else f"event type {_quote(etype)}"
    return Decision(event_id, reason, detail, key.id, auth.method, identity,
                    verified.subject if verified else None, event=clean, event_type=etype)


def _refusal(event_id: str, r: Refused, event: Any = None, etype: str | None = None) -> Decision:
    return Decision(event_id, r.reason, r.detail, r.key_id, r.method, event=event,
                    event_type=etype)


def _json_type(value: Any) -> str:
    names: Mapping[type, str] = {list: "array", str: "string", bool: "boolean",
                                 int: "number", float: "number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _quote(etype: str | None) -> str:
    # A sender's string in a detail: bounded, so a 1 MB event type stays out of the audit.
    text = repr(etype)
    return text if len(text) <= 120 else text[:100] + "...'"
