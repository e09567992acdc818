"""Provider definitions and their keys: PEMs (also on one line), JWKS documents."""

from __future__ import annotations

import json

import pytest
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.unit.auth import jwt_kit as kit
from workers.auth.providers import (
    ProviderError,
    keys_from_jwks,
    parse_pem,
    provider_from_record,
)


def test_pem_pasted_on_one_line_is_accepted() -> None:
    pem = kit.public_pem(kit.RSA_KEY)
    one_line = pem.replace("\n", "")
    assert parse_pem(one_line).key.public_numbers() == kit.RSA_KEY.public_key().public_numbers()
    assert parse_pem(kit.public_pem(kit.EC_KEY).replace("\n", " ")).family == "EC"


@pytest.mark.parametrize("text", ["", "not a pem", "-----BEGIN PUBLIC KEY-----abc"
                                  "-----END PUBLIC KEY-----"])
def test_bad_pem(text: str) -> None:
    with pytest.raises(ProviderError):
        parse_pem(text)


def test_jwks_keeps_signing_keys_and_drops_symmetric_ones() -> None:
    rsa_jwk = json.loads(RSAAlgorithm.to_jwk(kit.JWKS_KEY.public_key()))
    ec_jwk = json.loads(ECAlgorithm.to_jwk(kit.EC_KEY.public_key()))
    doc = {"keys": [
        {**rsa_jwk, "kid": "k1", "use": "sig"}, {**ec_jwk, "kid": "e1"},
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},  # a shared secret: never used
        {**rsa_jwk, "kid": "enc", "use": "enc"}, {"kty": "RSA", "kid": "broken"}, "junk",
    ]}
    assert [(k.kid, k.family) for k in keys_from_jwks(doc)] == [("k1", "RSA"), ("e1", "EC")]
    with pytest.raises(ProviderError):
        keys_from_jwks({"nokeys": []})


def test_provider_record_defaults_and_checks() -> None:
    p = provider_from_record("provider/a", {"id": "a", "jwks_url": "https://idp.test/jwks",
                                            "audience": "api", "issuer": "https://idp.test/"})
    assert (p.algorithms, p.leeway_s, p.audience) == (("RS256", "ES256"), 30.0, ("api",))
    cases: list[tuple[dict[str, object], str]] = [
        ({"id": "a"}, "public_keys"),
        ({"id": "a", "jwks_url": "file:///etc/passwd"}, "http"),
        ({"id": "a", "jwks_url": "https://x", "algorithms": ["HS256"]}, "not allowed"),
        ({"id": "a", "jwks_url": "https://x", "algorithms": ["none"]}, "not allowed"),
        ({"id": "a", "jwks_url": "https://x", "leeway_s": "30"}, "leeway_s"),
        ({"id": "a", "public_keys": ["nope"]}, r"public_keys\[0\]"),
        ({"jwks_url": "https://x"}, "id"),
    ]
    for bad, message in cases:
        with pytest.raises(ProviderError, match=message):
            provider_from_record("provider/a", bad)
