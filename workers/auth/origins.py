"""Origin allow-lists with Jitsu's patterns.

A pattern with a leading `*` matches hosts that end with the rest
(`*.shop.com` matches `a.shop.com`, not `shop.com`); a trailing `*` matches
hosts that start with the rest; `*` alone matches any host; anything else
matches exactly. Scheme, port and path of both sides are ignored. Host names
are compared lower-cased, because DNS names are case-insensitive and browsers
send them lower-cased anyway: `Shop.COM` in a config means `shop.com`.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache


def normalize(origin: str | None) -> str | None:
    """The bare lower-case host of an Origin header or pattern, or None."""
    if origin is None:
        return None
    value = origin.strip().lower()
    if "://" in value:
        value = value.split("://", 1)[1]
    value = value.split("/", 1)[0].split("?", 1)[0]
    if value.startswith("["):  # IPv6 literal: keep the brackets, drop the port
        value = value.split("]", 1)[0] + "]"
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    if value in ("", "null"):
        return None
    return value


def matches(host: str, pattern: str) -> bool:
    pat = pattern.strip().lower()
    if pat == "*":
        return True
    if pat.startswith("*"):
        return host.endswith(_host_part(pat[1:], suffix=True))
    if pat.endswith("*"):
        return host.startswith(_host_part(pat[:-1], suffix=False))
    return host == normalize(pat)


def allowed(origin: str | None, patterns: Iterable[str]) -> bool:
    """True when the key has no patterns, or the origin matches one of them."""
    if isinstance(patterns, tuple):  # a key's origins: remembered, a few thousand at most
        return _allowed_cached(origin, patterns)
    return _allowed(origin, patterns)


def _allowed(origin: str | None, patterns: Iterable[str]) -> bool:
    pats = [p for p in patterns if p.strip()]
    if not pats:
        return True
    host = normalize(origin)
    if host is None:
        return False
    return any(matches(host, p) for p in pats)


_allowed_cached = lru_cache(maxsize=4096)(_allowed)


def _host_part(fragment: str, *, suffix: bool) -> str:
    # `*.shop.com:8080` or `https://shop*`: strip what the host comparison ignores.
    if not suffix and "://" in fragment:
        fragment = fragment.split("://", 1)[1]
    if suffix:
        fragment = fragment.split("/", 1)[0]
        if fragment.count(":") == 1:
            fragment = fragment.split(":", 1)[0]
    return fragment
