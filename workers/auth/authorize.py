"""The decision core: a raw request and the current key state in, Decisions out.

Pure: no Kafka, no network, no clock. `now` is handed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workers.auth import events, origins
from workers.auth.decision import Decision, Method
from workers.auth.keys import KeyIndex, KeyRecord, SecretKind
from workers.auth.policy import EventPolicy, policy_for
from workers.auth.reasons import Reason
from workers.auth.request import RawRequest

DEFAULT_MAX_BODY = 1024 * 1024


@dataclass
class AuthState:
    """Everything a decision reads besides the request itself."""

    keys: KeyIndex = field(default_factory=KeyIndex)
    policies: dict[str, EventPolicy] = field(default_factory=dict)
    max_body_bytes: int = DEFAULT_MAX_BODY


@dataclass(frozen=True, slots=True)
class Authenticated:
    key: KeyRecord
    method: Method


@dataclass(frozen=True, slots=True)
class Refused:
    reason: Reason
    detail: str = ""
    key_id: str | None = None
    method: Method | None = None


_ENDPOINT_KIND = {"client": SecretKind.CLIENT, "s2s": SecretKind.SERVER}
_METHOD = {SecretKind.CLIENT: Method.CLIENT_SECRET, SecretKind.SERVER: Method.SERVER_SECRET}


def decide(request: RawRequest, state: AuthState, now: float) -> list[Decision]:
    rid = request.request_id
    if len(request.body) > state.max_body_bytes:
        return [Decision(rid, Reason.PAYLOAD_TOO_LARGE,
                         f"{len(request.body)} bytes > {state.max_body_bytes}")]
    if request.endpoint is None:
        return [Decision(rid, Reason.MALFORMED_EVENT, "missing or unknown eg-endpoint header")]
    auth = authenticate(request, state.keys, now)
    try:
        parsed, batch = events.parse(request.body)
    except events.MalformedBody as exc:
        if isinstance(auth, Refused):
            return [_refusal(rid, auth)]
        return [Decision(rid, Reason.MALFORMED_EVENT, str(exc), key_id=auth.key.id,
                         method=auth.method)]
    if batch and not parsed:
        reason = auth if isinstance(auth, Refused) else Refused(
            Reason.MALFORMED_EVENT, "empty batch", auth.key.id, auth.method)
        return [_refusal(rid, reason)]
    out = []
    for index, event in enumerate(parsed):
        event_id = f"{rid}:{index}" if batch else rid
        out.append(_decide_event(event_id, event, auth, request, state))
    return out


def authenticate(request: RawRequest, keys: KeyIndex, now: float) -> Authenticated | Refused:
    if request.token is None:
        if request.jwt is None and request.access_key is None:
            return Refused(Reason.MISSING_CREDENTIALS, "no API secret in the request")
        return Refused(Reason.MISSING_CREDENTIALS, "this endpoint needs an API secret")
    wanted = _ENDPOINT_KIND[request.endpoint or "client"]
    match = keys.match_secret(request.token, prefer=wanted)
    if match is None:
        return Refused(Reason.UNKNOWN_KEY, "no key has this secret")
    key, method = match.key, _METHOD[match.kind]
    if match.kind is not wanted:
        where = "/api/v1/s2s/event" if match.kind is SecretKind.SERVER else "/api/v1/event"
        return Refused(Reason.WRONG_ENDPOINT, f"a {match.kind.value} secret belongs on {where}",
                       key.id, method)
    if key.disabled:
        return Refused(Reason.KEY_DISABLED, "key is disabled", key.id, method)
    if key.expired(now):
        return Refused(Reason.KEY_EXPIRED, "key is past expires_at", key.id, method)
    if match.secret.expired(now):
        return Refused(Reason.KEY_EXPIRED, "this secret is past its not_after", key.id, method)
    # Origins guard browser keys; backends send no Origin (see docs/authorization.md).
    if match.kind is SecretKind.CLIENT and not origins.allowed(request.origin, key.origins):
        shown = origins.normalize(request.origin) or "none"
        return Refused(Reason.ORIGIN_NOT_ALLOWED, f"origin {shown} not in the key's origins",
                       key.id, method)
    return Authenticated(key, method)


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
                        f"event type {etype!r} not in allowed_events", key.id, auth.method,
                        event=clean, event_type=etype)
    if request.jwt is not None:
        # No JWT provider is wired in yet: a present JWT cannot be verified.
        return Decision(event_id, Reason.JWT_INVALID, "no_provider", key.id, auth.method,
                        event=clean, event_type=etype)
    reason, identity = policy_for(key.policy, state.policies).decide(etype, jwt_valid=False)
    detail = "" if reason.accepted else f"event type {etype!r}"
    return Decision(event_id, reason, detail, key.id, auth.method, identity, None,
                    event=clean, event_type=etype)


def _refusal(event_id: str, r: Refused, event: Any = None, etype: str | None = None) -> Decision:
    return Decision(event_id, r.reason, r.detail, r.key_id, r.method, event=event,
                    event_type=etype)


def _json_type(value: Any) -> str:
    names: Mapping[type, str] = {list: "array", str: "string", bool: "boolean",
                                 int: "number", float: "number", type(None): "null"}
    return names.get(type(value), type(value).__name__)
