"""JWT providers and their public keys: pure parsing, no fetching.

A provider's keys come from pasted PEMs (parsed once, when the provider record
is applied) or from a JWKS document (fetched by workers/keys/jwks.py and parsed
here). Every key is pinned to its algorithm family, so an RSA or EC public key
can never serve as an HMAC secret, and symmetric (`oct`) JWKs are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from cryptography.x509 import load_pem_x509_certificate
from jwt import PyJWK
from jwt.exceptions import PyJWTError

# What a provider may allow: asymmetric algorithms only, never `none` or HS*.
FAMILY = {
    "RS256": "RSA", "RS384": "RSA", "RS512": "RSA",
    "PS256": "RSA", "PS384": "RSA", "PS512": "RSA",
    "ES256": "EC", "ES384": "EC", "ES512": "EC",
    "EdDSA": "OKP",
}
DEFAULT_ALGORITHMS = ("RS256", "ES256")
DEFAULT_LEEWAY_S = 30.0
_PEM = re.compile(r"-----BEGIN ([A-Z ]+)-----(.*?)-----END \1-----", re.S)


class ProviderError(ValueError):
    """A provider definition or key that cannot be used. Safe to log."""


@dataclass(frozen=True)
class ProviderKey:
    kid: str | None
    family: str  # RSA | EC | OKP
    key: Any  # a cryptography public key object


@dataclass(frozen=True)
class Provider:
    id: str
    public_keys: tuple[ProviderKey, ...] = ()
    jwks_url: str | None = None
    audience: tuple[str, ...] = ()
    issuer: str | None = None
    key: str | None = None  # the key whose policy applies to JWT-only requests
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    leeway_s: float = DEFAULT_LEEWAY_S
    record: bytes = b""  # the canonical auth-config value, to tell a change from none
    source: str | None = None  # who owns it: the config (None) or an operator (admin, cli)


def parse_pem(text: str, kid: str | None = None) -> ProviderKey:
    """A PEM public key or certificate, also when pasted on one line."""
    match = _PEM.search(text.strip())
    if match is None:
        raise ProviderError("a public key must be PEM (-----BEGIN PUBLIC KEY-----)")
    label, body = match.group(1), re.sub(r"\s+", "", match.group(2))
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    pem = "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----", ""]).encode()
    try:
        key = (load_pem_x509_certificate(pem).public_key() if label == "CERTIFICATE"
               else load_pem_public_key(pem))
    except ValueError:
        raise ProviderError(f"cannot read the PEM {label.lower()}") from None
    return ProviderKey(kid, _family(key), key)


def keys_from_jwks(doc: Any) -> tuple[ProviderKey, ...]:
    """The usable keys of a JWKS document; symmetric and unreadable keys are skipped."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("keys"), list):
        raise ProviderError('a JWKS must be {"keys": [...]}')
    out = []
    for jwk in doc["keys"]:
        if not isinstance(jwk, Mapping) or jwk.get("kty") not in ("RSA", "EC", "OKP"):
            continue
        if jwk.get("use") not in (None, "sig"):
            continue
        try:
            parsed = PyJWK(dict(jwk))
        except (PyJWTError, ValueError, TypeError, KeyError):
            continue
        kid = jwk.get("kid") if isinstance(jwk.get("kid"), str) else None
        try:
            out.append(ProviderKey(kid, _family(parsed.key), parsed.key))
        except ProviderError:
            continue
    return tuple(out)


def provider_from_record(where: str, value: Mapping[str, Any]) -> Provider:
    """A provider from its auth-config record (or config entry)."""
    pid = value.get("id")
    if not isinstance(pid, str) or not pid:
        raise ProviderError(f"{where}: `id` must be a non-empty string")
    pems = _strings(where, value, "public_keys")
    jwks_url = value.get("jwks_url") or None
    if jwks_url is not None and (not isinstance(jwks_url, str)
                                 or not jwks_url.startswith(("http://", "https://"))):
        raise ProviderError(f"{where}: jwks_url must be an http(s) URL")
    if not pems and not jwks_url:
        raise ProviderError(f"{where}: give public_keys (PEM) or a jwks_url")
    algorithms = _strings(where, value, "algorithms") or DEFAULT_ALGORITHMS
    bad = [a for a in algorithms if a not in FAMILY]
    if bad:
        raise ProviderError(f"{where}: algorithms {bad} not allowed; use {sorted(FAMILY)}")
    leeway = value.get("leeway_s", DEFAULT_LEEWAY_S)
    if isinstance(leeway, bool) or not isinstance(leeway, int | float) or not 0 <= leeway <= 600:
        raise ProviderError(f"{where}: leeway_s must be a number of seconds from 0 to 600")
    keys = []
    for n, pem in enumerate(pems):
        try:
            keys.append(parse_pem(pem))
        except ProviderError as exc:
            raise ProviderError(f"{where}: public_keys[{n}]: {exc}") from None
    issuer, key, source = value.get("issuer"), value.get("key"), value.get("source")
    for name, item in (("issuer", issuer), ("key", key), ("source", source)):
        if item is not None and not isinstance(item, str):
            raise ProviderError(f"{where}: {name} must be a string")
    return Provider(pid, tuple(keys), jwks_url, _strings(where, value, "audience"),
                    issuer or None, key or None, algorithms, float(leeway),
                    canonical_record(value), source or None)


def canonical_record(value: Mapping[str, Any]) -> bytes:
    return orjson.dumps(dict(value), option=orjson.OPT_SORT_KEYS)


def _family(key: Any) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "OKP"
    raise ProviderError("only RSA, EC and Ed25519 public keys can verify tokens")


def _strings(where: str, value: Mapping[str, Any], name: str) -> tuple[str, ...]:
    items: Any = value.get(name)
    if items is None or items == "":
        return ()
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, Iterable) or not all(isinstance(i, str) for i in items):
        raise ProviderError(f"{where}: {name} must be a list of strings")
    return tuple(items)
