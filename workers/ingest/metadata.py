"""Turn an HTTP request's parts into a raw-events record: pure, no I/O.

The body is passed through untouched unless an event carries `api_key` (Jitsu
SDKs copy the key into every event): then that field is removed, and its value
is the API secret if the request carried none elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson

from workers.auth import secrets, tokens
from workers.auth.events import SECRET_FIELDS

Header = tuple[str, bytes]


@dataclass(frozen=True)
class RawRecord:
    key: bytes
    value: bytes
    headers: list[Header]


def build(
    *,
    endpoint: str,
    request_id: str,
    received_at: str,
    body: bytes,
    doc: Any,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    path: str,
    ip: str | None,
) -> RawRecord:
    """`headers` keyed by lower-case names; `doc` is the body, already parsed."""
    creds = tokens.extract(query, headers)
    token = creds.token
    body_secret, stripped = _strip_body_secrets(doc)
    if stripped is not None:
        body = orjson.dumps(stripped)
        token = token or body_secret
    nonce = headers.get("x-nonce") or None
    fields: list[tuple[str, str | None]] = [
        ("eg-request-id", request_id),
        ("eg-received-at", received_at),
        ("eg-endpoint", endpoint),
        ("eg-token", secrets.digest(token) if token else None),
        ("eg-jwt", creds.jwt),
        ("eg-access-key", headers.get("x-access-key")),
        ("eg-timestamp", headers.get("x-timestamp")),
        ("eg-nonce", nonce),
        ("eg-signature", headers.get("x-signature")),
        ("eg-origin", headers.get("origin")),
        ("eg-ip", ip),
        ("eg-user-agent", headers.get("user-agent")),
        ("eg-path", path),
        ("eg-query", urlencode(tokens.without_secrets(query)) or None),
    ]
    record_headers = [(name, value.encode()) for name, value in fields if value]
    # A signed request is keyed by its nonce so a replay meets its original's partition.
    key = (nonce or request_id).encode()
    return RawRecord(key, body, record_headers)


def _strip_body_secrets(doc: Any) -> tuple[str | None, Any]:
    """(the first secret found, the document without secret fields) or (None, None)."""
    events: list[Any]
    if isinstance(doc, list):
        events = doc
    elif isinstance(doc, dict):
        inner = next((doc[k] for k in ("events", "batch") if isinstance(doc.get(k), list)), None)
        events = [doc, *inner] if inner is not None else [doc]
    else:
        return None, None
    found: str | None = None
    changed = False
    for event in events:
        if isinstance(event, dict):
            for name in SECRET_FIELDS:
                if name in event:
                    value = event.pop(name)
                    changed = True
                    if found is None and isinstance(value, str) and value.strip():
                        found = value.strip()
    return found, (doc if changed else None)
