"""Turn an HTTP request's parts into a raw-events record: pure, no I/O.

The body is passed through untouched unless an event carries `api_key` (Jitsu
SDKs copy the key into every event): then that field is removed, and its value
is the API secret if the request carried none elsewhere.

Header values are written as the bytes the client sent: aiohttp decodes them
as UTF-8 with `surrogateescape`, so invalid UTF-8 arrives as lone surrogates,
which are turned back into the original bytes here (never an exception).
Descriptive values are capped (`CAPS`, cut on a character boundary);
credentials never are: they must verify as sent, or fail.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson

from workers.auth import secrets, tokens
from workers.auth.events import SECRET_FIELDS

Header = tuple[str, bytes]

KIB = 1024
# Bytes kept of each descriptive header; the rest is cut off.
CAPS = {
    "eg-origin": 1 * KIB,
    "eg-user-agent": 1 * KIB,
    "eg-path": 2 * KIB,
    "eg-query": 4 * KIB,
    "eg-ip": 64,
}
# Query parameters whose value is replaced by its sha256 digest in eg-query: any
# name containing one of these (case-insensitive, `-` read as `_`). They are not
# credentials (tokens.py decides that); they just must not be stored in clear.
SECRET_WORDS = ("token", "key", "secret", "password", "passwd", "pwd", "signature",
                "credential", "authorization")


@dataclass(frozen=True, slots=True)
class RawRecord:
    key: bytes
    value: bytes
    headers: list[Header]
    # The key is the random request id (32 hex digits), not a nonce: the record may
    # go to any partition, so the sink picks one from the key's digits, not by hash.
    random_key: bool = False


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
    """`headers` keyed by lower-case names (`headers_once`); `doc` is the body, already
    parsed. Raises Ambiguous when the API secret is sent twice with different values."""
    readable = _decodable(headers)
    body_secrets, stripped = _strip_body_secrets(doc)
    # Jitsu's order, the body last: with one value in every place, the first is the token.
    places = tokens.secret_places(query, readable) + [("body api_key", s) for s in body_secrets]
    if len({secret for _, secret in places}) > 1:
        raise Ambiguous(f"the API secret is sent in {', '.join(p for p, _ in places)} with "
                        "different values; send it once")
    token = places[0][1] if places else None
    if stripped is not None:
        body = orjson.dumps(stripped)
    nonce = headers.get("x-nonce") or None
    fields: list[tuple[str, str | None]] = [
        ("eg-request-id", request_id),
        ("eg-received-at", received_at),
        ("eg-endpoint", endpoint),
        ("eg-token", digest(token) if token else None),
        ("eg-jwt", tokens.bearer_jwt(readable)),
        ("eg-access-key", headers.get("x-access-key")),
        ("eg-timestamp", headers.get("x-timestamp")),
        ("eg-nonce", nonce),
        ("eg-signature", headers.get("x-signature")),
        ("eg-origin", headers.get("origin")),
        ("eg-ip", ip),
        ("eg-user-agent", headers.get("user-agent")),
        ("eg-path", path),
        ("eg-query", query_text(query) or None),
    ]
    record_headers = [(name, _bytes(name, value)) for name, value in fields if value]
    # A signed request is keyed by its nonce so a replay meets its original's partition.
    key = raw_bytes(nonce or request_id)
    return RawRecord(key, body, record_headers, random_key=nonce is None)


class Ambiguous(ValueError):
    """A request that says two things about who sent it: the ingest answers 400."""


# Headers that carry a credential, are signed or decide the key's origin check. Two
# values of one cannot be stored as one: which one the sender meant, and which one a
# proxy in front of the ingest read, is unknowable.
CREDENTIAL_HEADERS = {name.lower(): name for name in (
    "Origin", "X-Auth-Token", "api_key", "Authorization", "X-Access-Key", "X-Signature",
    "X-Timestamp", "X-Nonce")}


def headers_once(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The headers keyed by lower-case name; raises Ambiguous for a credential header
    sent more than once."""
    out: dict[str, str] = {}
    for name, value in items:
        lower = name.lower()
        if lower in out and lower in CREDENTIAL_HEADERS:
            raise Ambiguous(f"header {CREDENTIAL_HEADERS[lower]} is sent more than once; send "
                            "each credential header once")
        out[lower] = value
    return out


def _decodable(headers: Mapping[str, str]) -> Mapping[str, str]:
    """Basic credentials are base64, so ASCII: any other `Authorization: Basic` value
    carries no user name (tokens.basic_user would raise on it instead of saying so)."""
    auth = headers.get("authorization")
    if auth is None or auth.isascii() or auth.strip()[:6].lower() != "basic ":
        return headers
    return {k: v for k, v in headers.items() if k != "authorization"}


def raw_bytes(text: str) -> bytes:
    """The bytes the client sent (aiohttp decodes headers with surrogateescape)."""
    return text.encode("utf-8", "surrogateescape")


def digest(secret: str) -> str:
    """`sha256:<hex>` of the secret's bytes as sent; `secrets.digest` for valid UTF-8."""
    try:
        return secrets.digest(secret)
    except UnicodeEncodeError:
        return secrets.PREFIX + hashlib.sha256(raw_bytes(secret)).hexdigest()


def cut(data: bytes, limit: int) -> bytes:
    """At most `limit` bytes, never ending inside a UTF-8 character."""
    if len(data) <= limit:
        return data
    data = data[:limit]
    # Drop a trailing lead byte and its continuation bytes if the character is incomplete.
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # an ASCII or lead byte
            need = 1 if byte < 0x80 else 2 if byte >> 5 == 0x6 else 3 if byte >> 4 == 0xE else 4
            return data if need <= back else data[:-back]
    return data


def _bytes(name: str, value: str) -> bytes:
    data = raw_bytes(value)
    limit = CAPS.get(name)
    return cut(data, limit) if limit is not None else data


def query_text(query: Sequence[tuple[str, str]]) -> str:
    """The query for eg-query: without the credential parameters (`token`, `p_*`), and
    with the value of any other secret-looking parameter replaced by its digest."""
    kept = [(n, digest(v) if v and _secret_name(n) else v) for n, v in
            tokens.without_secrets(query)]
    return urlencode(kept, safe=":", errors="surrogateescape")


def _secret_name(name: str) -> bool:
    folded = name.lower().replace("-", "_")
    return any(word in folded for word in SECRET_WORDS)


def _strip_body_secrets(doc: Any) -> tuple[set[str], Any]:
    """(the secrets found, the document without secret fields) or (∅, None)."""
    events: list[Any]
    if isinstance(doc, list):
        events = doc
    elif isinstance(doc, dict):
        inner = next((doc[k] for k in ("events", "batch") if isinstance(doc.get(k), list)), None)
        events = [doc, *inner] if inner is not None else [doc]
    else:
        return set(), None
    found: set[str] = set()
    changed = False
    for event in events:
        if isinstance(event, dict):
            for name in SECRET_FIELDS:
                if name in event:
                    value = event.pop(name)
                    changed = True
                    if isinstance(value, str) and value.strip():
                        found.add(value.strip())
    return found, (doc if changed else None)
