"""Verify a JWT against one provider, with the clock handed in.

PyJWT checks the signature only; every claim is checked here against `now`, so
the core reads no clock, and a claim of the wrong type (an `exp` that is a
string, null, a list or not finite) is a rejection, never an exception.
Hardening beyond the library defaults: `exp` is required; the algorithm must be
in the provider's allow-list and match the family of the key chosen by `kid`;
`jwk`, `jku`, `x5u` and `x5c` headers are never read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jwt as pyjwt
from jwt.exceptions import (
    InvalidAlgorithmError,
    InvalidKeyError,
    InvalidSignatureError,
    PyJWTError,
)

from workers.auth.providers import FAMILY, Provider, ProviderKey

MAX_TOKEN_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class Verified:
    provider: str
    subject: str | None
    claims: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Invalid:
    """`detail` is one of DESIGN.md's jwt_invalid details."""

    detail: str


class VerifiedCache:
    """Tokens already verified, until their `exp`: a token is usually sent many times.

    Entries are keyed by the key-state generation, which key table records and the
    JWKS cache bump on every provider or key-set change, so a cached result
    never outlives the keys that verified it.
    """

    def __init__(self, max_entries: int = 50_000) -> None:
        self.max_entries = max_entries
        self.generation = 0
        self._hits: dict[tuple[int, str, str], tuple[Verified, float]] = {}

    def get(self, provider: Provider, token: str, now: float) -> Verified | None:
        hit = self._hits.get((self.generation, provider.id, token))
        if hit is None or now > hit[1] + provider.leeway_s:
            return None
        return hit[0]

    def put(self, provider: Provider, token: str, result: Verified) -> None:
        if len(self._hits) >= self.max_entries:
            self._hits.clear()
        exp = _number(result.claims.get("exp"))
        if exp is not None:
            self._hits[(self.generation, provider.id, token)] = (result, exp)

    def changed(self) -> None:
        """Providers or their keys changed: forget every cached result."""
        self.generation += 1
        self._hits.clear()


def unverified_issuer(token: str) -> str | None:
    """The `iss` claim, unverified: only to pick which provider verifies the token."""
    try:
        claims = pyjwt.decode(token, options={"verify_signature": False})
    except PyJWTError:
        return None
    iss = claims.get("iss") if isinstance(claims, dict) else None
    return iss if isinstance(iss, str) else None


def verify_cached(token: str, provider: Provider, keys: Iterable[ProviderKey], now: float,
                  cache: VerifiedCache) -> Verified | Invalid:
    hit = cache.get(provider, token, now)
    if hit is not None:
        return hit
    result = verify(token, provider, keys, now)
    if isinstance(result, Verified):
        cache.put(provider, token, result)
    return result


def verify(token: str, provider: Provider, keys: Iterable[ProviderKey], now: float
           ) -> Verified | Invalid:
    if len(token) > MAX_TOKEN_BYTES:
        return Invalid("malformed")
    try:
        header = pyjwt.get_unverified_header(token)
    except PyJWTError:
        return Invalid("malformed")
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str) or (kid is not None and not isinstance(kid, str)):
        return Invalid("malformed")
    if alg not in provider.algorithms or alg not in FAMILY:
        return Invalid("alg_not_allowed")
    keys = tuple(keys)
    # A kid picks its key; pasted PEMs carry no kid and serve any token.
    candidates = [k for k in keys if kid is None or k.kid == kid] or [
        k for k in keys if k.kid is None]
    if not candidates:
        return Invalid("unknown_kid")
    usable = [k for k in candidates if k.family == FAMILY[alg]]
    if not usable:
        return Invalid("alg_not_allowed")
    claims: Any = None
    for key in usable:
        try:
            claims = pyjwt.decode(token, key.key, algorithms=[alg], options={
                "verify_signature": True, "verify_exp": False, "verify_nbf": False,
                "verify_iat": False, "verify_aud": False, "verify_iss": False,
                "verify_sub": False, "verify_jti": False})
            break
        except InvalidSignatureError:
            continue
        except (InvalidAlgorithmError, InvalidKeyError):
            return Invalid("alg_not_allowed")
        except (PyJWTError, ValueError, TypeError):  # DecodeError and the like
            return Invalid("malformed")
    if claims is None:
        return Invalid("bad_signature")
    if not isinstance(claims, dict):
        return Invalid("malformed")
    return _check_claims(claims, provider, now)


def _check_claims(claims: dict[str, Any], provider: Provider, now: float) -> Verified | Invalid:
    leeway = provider.leeway_s
    exp = _number(claims.get("exp"))
    if exp is None:
        return Invalid("malformed")  # missing, or not a finite number
    if now > exp + leeway:
        return Invalid("expired")
    for name in ("nbf", "iat"):
        if name in claims:
            value = _number(claims[name])
            if value is None:
                return Invalid("malformed")
            if value > now + leeway:
                return Invalid("not_yet_valid")
    if provider.issuer is not None and claims.get("iss") != provider.issuer:
        return Invalid("bad_issuer")
    if provider.audience:
        aud = claims.get("aud")
        given = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else None
        if given is None or not all(isinstance(a, str) for a in given) or not (
                set(given) & set(provider.audience)):
            return Invalid("bad_audience")
    sub = claims.get("sub")
    if sub is not None and not isinstance(sub, str):
        return Invalid("malformed")
    return Verified(provider.id, sub, claims)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return number if math.isfinite(number) else None
