"""Where a request carries its credentials, in Jitsu's order.

The API secret comes from the first non-empty of: query `token`, header
`X-Auth-Token`, header `api_key`, any query parameter starting `p_` (Jitsu's
randomized URLs), the user name of HTTP Basic auth. A JWT comes as
`Authorization: Bearer <jwt>`.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

Query = Sequence[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Credentials:
    token: str | None = None
    jwt: str | None = None


def extract(query: Query, headers: Mapping[str, str]) -> Credentials:
    """`headers` must be keyed by lower-case names."""
    return Credentials(token=api_secret(query, headers), jwt=bearer_jwt(headers))


def api_secret(query: Query, headers: Mapping[str, str]) -> str | None:
    for candidate in (
        _first(query, lambda name: name == "token"),
        headers.get("x-auth-token"),
        headers.get("api_key"),
        _first(query, lambda name: name.startswith("p_")),
        basic_user(headers.get("authorization")),
    ):
        if candidate and candidate.strip():
            return candidate.strip()
    return None


def secret_places(query: Query, headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """Every (place, secret) a request carries an API secret in, in Jitsu's order."""
    places = [(f"query {name}", value.strip()) for name, value in query
              if (name == "token" or name.startswith("p_")) and value.strip()]
    for name, shown in (("x-auth-token", "X-Auth-Token"), ("api_key", "api_key")):
        value = (headers.get(name) or "").strip()
        if value:
            places.append((f"header {shown}", value))
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


def _first(query: Query, wanted: Callable[[str], bool]) -> str | None:
    for name, value in query:
        if wanted(name) and value.strip():
            return value
    return None


def without_secrets(query: Query) -> list[tuple[str, str]]:
    """The query with every parameter that may carry a secret removed."""
    return [(n, v) for n, v in query if n != "token" and not n.startswith("p_")]
