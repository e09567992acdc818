"""Origin allow-lists with Jitsu's patterns, over strictly parsed Origin headers.

An Origin header is parsed as the serialized origin browsers send (RFC 6454 §6.2):
`scheme "://" host [":" port]` and nothing else, the scheme `http` or `https`
(other schemes have no host a URL parser would lower-case). The host is a DNS name
(ASCII letters, digits, hyphens and dots; an IDN only in its `xn--` form), a
dotted-quad IPv4 address or a bracketed IPv6 address. Anything else is malformed and matches
no pattern: a value that a URL parser would read with another host (`#`, `\\`,
`@`, whitespace, a path...) must never be compared as if it were one host.

Patterns, checked the same way when keys are loaded (`pattern_problem`):
`*` matches any well-formed origin; `*.shop.com` matches hosts that end with
`.shop.com` (not `shop.com` itself); `staging*` matches hosts that start with
`staging`; anything else is one origin or host and matches exactly. A scheme
(`https://`) and a port (`:8443`) on a pattern are allowed and ignored, as
Jitsu ignores them. Hosts are compared lower-cased: DNS names are
case-insensitive and browsers send them lower-cased anyway.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

MALFORMED = "malformed Origin"

SCHEMES = ("http", "https")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_PORT = re.compile(r"(?:0|[1-9][0-9]{0,4})\Z")
# The WHATWG URL parser reads a host whose last label looks numeric as IPv4
# (`0x7f.1` is 127.0.0.1): such a host is an address, or malformed.
_NUMERIC = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)\Z")
_QUAD = re.compile(r"(?:0|[1-9][0-9]{0,2})\Z")


class Malformed(ValueError):
    """An Origin or pattern that is not what its grammar allows; the message says why."""


def host_of(origin: str) -> str:
    """The lower-case host of a serialized origin; raises Malformed."""
    if not origin.isascii():
        raise Malformed("not ASCII (an IDN must be in its xn-- form)")
    scheme, sep, rest = origin.lower().partition("://")
    if not sep or scheme not in SCHEMES:
        raise Malformed("not http:// or https:// before the host")
    return _host_port(rest)


def refusal(origin: str | None, patterns: Iterable[str]) -> str | None:
    """None when `origin` may use a key with `patterns`, else the reason for the audit."""
    pats = patterns if isinstance(patterns, tuple) else tuple(patterns)
    return _refusal(origin, pats)


def allowed(origin: str | None, patterns: Iterable[str]) -> bool:
    """True when the key has no patterns, or the origin matches one of them."""
    return refusal(origin, patterns) is None


@lru_cache(maxsize=4096)  # a key's origins: a few thousand (origin, key) pairs at most
def _refusal(origin: str | None, patterns: tuple[str, ...]) -> str | None:
    compiled = [_compiled(p) for p in patterns if p.strip()]
    if not compiled:
        return None
    if origin is None or origin == "null":
        return "origin none not in the key's origins"
    try:
        host = host_of(origin)
    except Malformed:
        return MALFORMED
    if any(p is not None and p.matches(host) for p in compiled):
        return None
    return f"origin {host} not in the key's origins"


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` could never match a well-formed Origin, or None when it is usable."""
    try:
        _parse_pattern(pattern)
    except Malformed as exc:
        return str(exc)
    return None


def check_patterns(patterns: Iterable[str]) -> None:
    """Raise Malformed naming the first pattern that could never match."""
    for pattern in patterns:
        problem = pattern_problem(pattern)
        if problem is not None:
            raise Malformed(f"origin pattern {pattern!r} can never match an Origin: {problem}")


@dataclass(frozen=True, slots=True)
class _Pattern:
    kind: str  # "any", "suffix", "prefix" or "exact"
    text: str

    def matches(self, host: str) -> bool:
        if self.kind == "any":
            return True
        if self.kind == "suffix":
            return host.endswith(self.text)
        if self.kind == "prefix":
            return host.startswith(self.text)
        return host == self.text


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> _Pattern | None:
    # Keys are checked when loaded; a pattern that slipped past matches nothing.
    try:
        return _parse_pattern(pattern)
    except Malformed:
        return None


def _parse_pattern(pattern: str) -> _Pattern:
    text = pattern.strip().lower()
    if not text.isascii():
        raise Malformed("not ASCII (an IDN must be in its xn-- form)")
    if text == "*":
        return _Pattern("any", "")
    scheme, sep, rest = text.partition("://")
    if sep and scheme not in SCHEMES:
        raise Malformed(f"{scheme!r} is not http or https")
    body = rest if sep else text
    if body.endswith("/"):  # pasted from an address bar
        body = body[:-1]
    if body.startswith("*") and "*" not in body[1:]:
        suffix = _strip_port(body[1:])
        _host("x" + suffix)  # it must be able to end a DNS name; `x` stands for the `*`
        return _Pattern("suffix", suffix)
    if body.endswith("*") and "*" not in body[:-1]:
        prefix = body[:-1]
        if not prefix or ":" in prefix or "[" in prefix:
            raise Malformed("a prefix pattern is the start of a DNS name, as in staging*")
        _host(prefix + "x")
        return _Pattern("prefix", prefix)
    if "*" in body:
        raise Malformed("'*' can only start or end a pattern")
    return _Pattern("exact", _host_port(body))


def _strip_port(text: str) -> str:
    host, colon, port = text.partition(":")
    if colon and not _PORT.match(port):
        raise Malformed(f"{port!r} is not a port")
    return host


def _host_port(rest: str) -> str:
    if rest.startswith("["):
        literal, bracket, after = rest[1:].partition("]")
        if not bracket:
            raise Malformed("an IPv6 address without its closing ]")
        host = _ipv6(literal)
    else:
        host_text, colon, port = rest.partition(":")
        after = colon + port
        host = _host(host_text)
    if after and not (after[0] == ":" and _PORT.match(after[1:]) and int(after[1:]) < 65536):
        raise Malformed("only a :port may follow the host")
    return host


def _host(text: str) -> str:
    if not text:
        raise Malformed("no host")
    if len(text) > 253:
        raise Malformed("a host name is at most 253 characters")
    labels = text.split(".")
    if _NUMERIC.match(labels[-1]):
        if len(labels) != 4 or not all(_QUAD.match(x) and int(x) < 256 for x in labels):
            raise Malformed("a numeric host must be a dotted-quad IPv4 address")
        return text
    for label in labels:
        if not _LABEL.match(label):
            raise Malformed("a host is letters, digits, hyphens and dots")
    return text


def _ipv6(literal: str) -> str:
    if "%" in literal:  # a zone id has no meaning outside the sender's machine
        raise Malformed("an IPv6 zone id")
    try:
        return f"[{ipaddress.IPv6Address(literal).compressed}]"
    except ValueError:
        raise Malformed("not an IPv6 address") from None
