"""Keys and tokens for the JWT and signing tests, made fresh for each run."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from workers.auth.providers import ProviderKey, parse_pem

NOW = 1_800_000_000.0
ISSUER = "https://idp.test/"
AUDIENCE = "api"

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
JWKS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ATTACKER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(private: Any) -> str:
    return private.public_key().public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def jwks_key(kid: str = "k1") -> ProviderKey:
    return ProviderKey(kid, "RSA", JWKS_KEY.public_key())


def pem_keys() -> tuple[ProviderKey, ...]:
    return parse_pem(public_pem(RSA_KEY)), parse_pem(public_pem(EC_KEY))


def claims(**extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1",
                           "exp": NOW + 600, "iat": NOW - 10}
    out.update(extra)
    return {k: v for k, v in out.items() if v is not ...}


def token(payload: dict[str, Any] | None = None, key: Any = RSA_KEY, alg: str = "RS256",
          headers: dict[str, Any] | None = None) -> str:
    return pyjwt.encode(payload if payload is not None else claims(), key, algorithm=alg,
                        headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: Any, payload: Any, signature: bytes = b"sig") -> str:
    """A token with any header and payload, JSON or not, and any signature."""
    def part(value: Any) -> str:
        return b64(value if isinstance(value, bytes) else json.dumps(value).encode())
    return f"{part(header)}.{part(payload)}.{b64(signature)}"


def hs256_with(secret: bytes, payload: dict[str, Any], kid: str | None = None) -> str:
    """HS256 signed with `secret`: the alg-confusion attack when `secret` is a public key."""
    header: dict[str, Any] = {"alg": "HS256", "typ": "JWT"}
    if kid:
        header["kid"] = kid
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(sig)}"


def signed_bytes(payload: bytes, key: Any = RSA_KEY, alg: str = "RS256") -> str:
    """A correctly signed token whose payload is any bytes (JSON or not)."""
    return pyjwt.api_jws.PyJWS().encode(payload, key, algorithm=alg)
