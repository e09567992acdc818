"""Where a request carries its credentials, in Jitsu's order.

The API secret comes from the first non-empty of: query `token`, header
`X-Auth-Token`, header `api_key`, any query parameter starting `p_` (Jitsu's
randomized URLs), the user name of HTTP Basic auth. A JWT comes as
`Authorization: Bearer <jwt>`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence

Query = Sequence[tuple[str, str]]


def api_secret(query: Query, headers: Mapping[str, str]) -> str | None:
    """The API secret Jitsu would use: the first place that carries one. `headers` are
    keyed by lower-case names, here and below."""
    places = secret_places(query, headers)
    return places[0][1] if places else None


def secret_places(query: Query, headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """Every (place, secret) a request carries an API secret in, in Jitsu's order: the
    ingest refuses a request whose places disagree (workers/ingest/metadata.py)."""
    places = [("query token", v.strip()) for n, v in query if n == "token" and v.strip()]
    for name, shown in (("x-auth-token", "X-Auth-Token"), ("api_key", "api_key")):
        value = (headers.get(name) or "").strip()
        if value:
            places.append((f"header {shown}", value))
    places += [(f"query {n}", v.strip()) for n, v in query if n.startswith("p_") and v.strip()]
    user = basic_user(headers.get("authorization"))
    if user and user.strip():
        places.append(("Basic user", user.strip()))
    return places


def bearer_jwt(headers: Mapping[str, str]) -> str | None:
    scheme, _, value = (headers.get("authorization") or "").strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def basic_user(authorization: str | None) -> str | None:
    scheme, _, value = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except ValueError:  # not base64 (binascii.Error), not ASCII, or not UTF-8 inside
        return None
    return decoded.split(":", 1)[0] or None


def without_secrets(query: Query) -> list[tuple[str, str]]:
    """The query with every parameter that may carry a secret removed."""
    return [(n, v) for n, v in query if n != "token" and not n.startswith("p_")]
