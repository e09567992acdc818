"""Malicious and broken credentials, each with the exact reason code it must get.

Every case goes through the whole decision core (`decide`), as a worker runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.auth import jwt_kit as kit
from workers.auth import secrets
from workers.auth.authorize import AuthState, decide
from workers.auth.decision import Decision, Identity, Method
from workers.auth.keys import KeyRecord, SecretRef
from workers.auth.providers import Provider
from workers.auth.request import RawRequest
from workers.auth.signing import sign
from workers.client import signed_headers

NOW = kit.NOW
HMAC_SECRET = "hmac-secret-of-app"
PATH = "/api/v1/s2s/event"
BODY = b'{"event_type":"page"}'


def state() -> AuthState:
    st = AuthState(unseal={"fernet:sealed": HMAC_SECRET}.get)
    st.keys.put(KeyRecord(
        "app", client_secrets=(SecretRef(secrets.digest("browser-secret")),),
        server_secrets=(SecretRef(secrets.digest("server-secret")),), access_key="AK",
        access_secret="fernet:sealed", jwt_providers=("idp",)))
    st.providers["idp"] = Provider("idp", kit.pem_keys(), "https://idp.test/jwks",
                                   (kit.AUDIENCE,), kit.ISSUER, key="app")
    st.jwks["idp"] = (kit.jwks_key("k1"),)
    return st


def with_jwt(token: str, secret: str | None = "server-secret") -> RawRequest:
    return RawRequest("r1", BODY, endpoint="s2s", jwt=token,
                      token=secrets.digest(secret) if secret else None)


def signed(body: bytes = BODY, *, rid: str = "r1", path: str = PATH, **over: Any) -> RawRequest:
    h = signed_headers("AK", HMAC_SECRET, body, PATH, now_ms=int(NOW * 1000), nonce="n-1")
    fields = {"access_key": h["X-Access-Key"], "timestamp": h["X-Timestamp"],
              "nonce": h["X-Nonce"], "signature": h["X-Signature"]}
    fields.update(over)
    return RawRequest(rid, body, endpoint="s2s", path=path, **fields)


def decided(request: RawRequest, st: AuthState | None = None) -> Decision:
    [d] = decide(request, st or state(), NOW)
    return d


ATTACKER_PEM = kit.public_pem(kit.ATTACKER).encode()
RSA_PEM = kit.public_pem(kit.RSA_KEY).encode()


def tampered_payload() -> str:
    head, _, sig = kit.token().split(".")
    return ".".join([head, kit.b64(b'{"iss":"https://idp.test/","aud":"api","sub":"admin",'
                                   b'"exp":1800000600}'), sig])


def tampered_signature() -> str:
    head, payload, sig = kit.token().split(".")
    return ".".join([head, payload, ("A" if sig[0] != "A" else "B") + sig[1:]])


JWT_CASES: list[tuple[str, Callable[[], str], str]] = [
    ("alg none", lambda: kit.raw_token({"alg": "none", "typ": "JWT"}, kit.claims(), b""),
     "alg_not_allowed"),
    ("alg NONE upper case", lambda: kit.raw_token({"alg": "NONE"}, kit.claims(), b""),
     "alg_not_allowed"),
    ("alg confusion: HS256 signed with the RSA public key",
     lambda: kit.hs256_with(RSA_PEM, kit.claims()), "alg_not_allowed"),
    ("alg confusion with the JWKS kid", lambda: kit.hs256_with(b"x", kit.claims(), kid="k1"),
     "alg_not_allowed"),
    ("RS256 header on an EC-signed token", lambda: kit.raw_token(
        {"alg": "RS256"}, kit.claims(), b"\x00" * 64), "bad_signature"),
    ("alg not in the provider's list (PS256)", lambda: kit.token(alg="PS256"),
     "alg_not_allowed"),
    ("signed by another key", lambda: kit.token(key=kit.ATTACKER), "bad_signature"),
    ("expired", lambda: kit.token(kit.claims(exp=NOW - 31)), "expired"),
    ("nbf in the future", lambda: kit.token(kit.claims(nbf=NOW + 120)), "not_yet_valid"),
    ("iat in the future", lambda: kit.token(kit.claims(iat=NOW + 120)), "not_yet_valid"),
    ("wrong aud", lambda: kit.token(kit.claims(aud="other")), "bad_audience"),
    ("aud list without ours", lambda: kit.token(kit.claims(aud=["a", "b"])), "bad_audience"),
    ("no aud", lambda: kit.token(kit.claims(aud=...)), "bad_audience"),
    ("wrong iss", lambda: kit.token(kit.claims(iss="https://evil.test/")), "bad_issuer"),
    ("unknown kid", lambda: kit.token(key=kit.JWKS_KEY, headers={"kid": "k9"}),
     "bad_signature"),
    ("tampered payload", tampered_payload, "bad_signature"),
    ("tampered signature", tampered_signature, "bad_signature"),
    ("jku header injection is ignored", lambda: kit.token(
        key=kit.ATTACKER, headers={"jku": "https://evil.test/jwks"}), "bad_signature"),
    ("x5u header injection is ignored", lambda: kit.token(
        key=kit.ATTACKER, headers={"x5u": "https://evil.test/cert"}), "bad_signature"),
    ("embedded jwk header is ignored", lambda: kit.token(key=kit.ATTACKER, headers={
        "jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}}), "bad_signature"),
    ("x5c header is ignored", lambda: kit.token(key=kit.ATTACKER, headers={
        "x5c": ["MIIB"]}), "bad_signature"),
    ("kid path traversal", lambda: kit.token(key=kit.JWKS_KEY, headers={
        "kid": "../../../../etc/passwd"}), "bad_signature"),
    ("kid that is a number", lambda: kit.raw_token({"alg": "RS256", "kid": 7}, kit.claims()),
     "malformed"),
    ("huge token", lambda: kit.token(kit.claims(pad="x" * 20000)), "malformed"),
    ("header not JSON", lambda: kit.raw_token(b"{not json", kit.claims()), "malformed"),
    ("payload not JSON, validly signed", lambda: kit.signed_bytes(b"\xff\xfe{"), "malformed"),
    ("payload a JSON array, validly signed", lambda: kit.signed_bytes(b"[1]"), "malformed"),
    ("two segments", lambda: "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjF9", "malformed"),
    ("not a JWT at all", lambda: "Bearer-or-whatever", "malformed"),
    ("exp is a string", lambda: kit.token(kit.claims(exp="1800000600")), "malformed"),
    ("exp is null", lambda: kit.token(kit.claims(exp=None)), "malformed"),
    ("exp is a list", lambda: kit.token(kit.claims(exp=[NOW + 60])), "malformed"),
    ("exp is huge", lambda: kit.token(kit.claims(exp=10**400)), "malformed"),
    ("exp is true", lambda: kit.token(kit.claims(exp=True)), "malformed"),
    ("no exp", lambda: kit.token(kit.claims(exp=...)), "malformed"),
    ("nbf is a string", lambda: kit.token(kit.claims(nbf="soon")), "malformed"),
    ("sub is a number", lambda: kit.token(kit.claims(sub=42)), "malformed"),
]


@pytest.mark.parametrize(("name", "make", "detail"), JWT_CASES, ids=[c[0] for c in JWT_CASES])
def test_malicious_jwt_riding_on_a_valid_key(name: str, make: Callable[[], str],
                                             detail: str) -> None:
    d = decided(with_jwt(make()))
    assert (d.reason.value, d.detail) == ("jwt_invalid", detail), name
    assert d.key_id == "app" and d.identity is None


def test_unknown_kid_on_a_jwks_only_provider() -> None:
    st = state()
    st.providers["idp"] = Provider("idp", (), "https://idp.test/jwks", (kit.AUDIENCE,),
                                   kit.ISSUER, key="app")
    d = decided(with_jwt(kit.token(key=kit.JWKS_KEY, headers={"kid": "k9"})), st)
    assert (d.reason.value, d.detail) == ("jwt_invalid", "unknown_kid")
    d = decided(with_jwt(kit.token(key=kit.JWKS_KEY, headers={"kid": "../../etc/passwd"})), st)
    assert (d.reason.value, d.detail) == ("jwt_invalid", "unknown_kid")


@pytest.mark.parametrize("make", [
    lambda: kit.token(),  # RS256 by the pasted PEM
    lambda: kit.token(key=kit.EC_KEY, alg="ES256"),
    lambda: kit.token(key=kit.JWKS_KEY, headers={"kid": "k1"}),
    lambda: kit.token(kit.claims(exp=NOW - 29)),  # within the 30 s leeway
    lambda: kit.token(kit.claims(aud=["other", kit.AUDIENCE])),
])
def test_valid_jwt_is_verified_with_subject(make: Callable[[], str]) -> None:
    d = decided(with_jwt(make()))
    assert (d.reason.value, d.identity, d.subject) == ("ok", Identity.VERIFIED, "user-1")


def test_invalid_jwt_is_never_downgraded_to_anonymous() -> None:
    """page would be accepted anonymously without a JWT; a bad JWT must not be."""
    assert decided(with_jwt(kit.token(key=kit.ATTACKER))).reason.value == "jwt_invalid"
    assert decided(RawRequest("r", BODY, endpoint="s2s",
                              token=secrets.digest("server-secret"))).reason.value == "ok"


def test_jwt_alone_is_matched_by_issuer_to_the_providers_key() -> None:
    d = decided(with_jwt(kit.token(), secret=None))
    assert (d.reason.value, d.method, d.key_id, d.subject) == ("ok", Method.JWT, "app", "user-1")
    d = decided(with_jwt(kit.token(kit.claims(iss="https://evil.test/")), secret=None))
    assert (d.reason.value, d.detail) == ("jwt_invalid", "bad_issuer")
    d = decided(with_jwt(kit.token(key=kit.ATTACKER), secret=None))
    assert (d.reason.value, d.detail) == ("jwt_invalid", "bad_signature")


def test_jwt_on_a_key_without_providers() -> None:
    st = state()
    st.keys.put(KeyRecord("plain", server_secrets=(SecretRef(secrets.digest("p")),)))
    d = decided(with_jwt(kit.token(), secret="p"), st)
    assert (d.reason.value, d.detail) == ("jwt_invalid", "no_provider")


SIGNED_CASES: list[tuple[str, Callable[[], RawRequest], str]] = [
    ("stale timestamp", lambda: signed(timestamp=str(int((NOW - 301) * 1000))),
     "hmac_stale_timestamp"),
    ("timestamp from the future", lambda: signed(timestamp=str(int((NOW + 301) * 1000))),
     "hmac_stale_timestamp"),
    ("timestamp not a number", lambda: signed(timestamp="yesterday"), "hmac_stale_timestamp"),
    ("timestamp in seconds, not ms", lambda: signed(timestamp=str(int(NOW))),
     "hmac_stale_timestamp"),
    ("body changed after signing", lambda: signed(b'{"event_type":"purchase"}',
                                                  signature=signed().signature),
     "hmac_bad_signature"),
    ("path changed after signing", lambda: signed(path="/api/v1/event"), "hmac_bad_signature"),
    ("signed with the wrong secret", lambda: signed(signature=sign(
        "guess", str(int(NOW * 1000)), "n-1", "POST", PATH, BODY)), "hmac_bad_signature"),
    ("signature not hex", lambda: signed(signature="zz" * 32), "hmac_bad_signature"),
    ("empty signature", lambda: signed(signature=""), "missing_credentials"),
    ("no nonce", lambda: signed(nonce=None), "missing_credentials"),
    ("no timestamp", lambda: signed(timestamp=None), "missing_credentials"),
    ("huge nonce", lambda: signed(nonce="n" * 500), "hmac_bad_signature"),
    ("unknown access key", lambda: signed(access_key="AK-nope"), "unknown_key"),
]


@pytest.mark.parametrize(("name", "make", "reason"), SIGNED_CASES,
                         ids=[c[0] for c in SIGNED_CASES])
def test_malicious_signed_request(name: str, make: Callable[[], RawRequest],
                                  reason: str) -> None:
    assert decided(make()).reason.value == reason, name


def test_signed_request_accepted_then_replay_rejected_but_redelivery_is_not_a_replay() -> None:
    st = state()
    first = decided(signed(rid="a"), st)
    assert (first.reason.value, first.method, first.key_id) == ("ok", Method.HMAC, "app")
    assert decided(signed(rid="a"), st).reason.value == "ok"  # at-least-once redelivery
    assert decided(signed(rid="b"), st).reason.value == "hmac_replay"


def test_signed_request_whose_secret_cannot_be_opened() -> None:
    st = state()
    st.unseal = lambda sealed: None
    d = decided(signed(), st)
    assert d.reason.value == "hmac_bad_signature" and "EVENTGUARD_MASTER_KEY" in d.detail


def test_cached_verification_ends_at_exp_and_when_the_keys_change() -> None:
    st = state()
    tok = kit.token(kit.claims(exp=NOW + 10))
    assert decided(with_jwt(tok), st).reason.value == "ok"
    [late] = decide(with_jwt(tok), st, NOW + 41)  # past exp plus the 30 s leeway
    assert (late.reason.value, late.detail) == ("jwt_invalid", "expired")
    assert decided(with_jwt(tok), st).reason.value == "ok"
    # The provider now trusts only its JWKS key: the cached result must not survive.
    st.providers["idp"] = Provider("idp", (), "https://idp.test/jwks", (kit.AUDIENCE,),
                                   kit.ISSUER, key="app")
    st.verified.changed()
    d = decided(with_jwt(tok), st)
    assert (d.reason.value, d.detail) == ("jwt_invalid", "bad_signature")


def test_a_replayed_record_is_a_replay_even_with_the_same_request_id() -> None:
    """kcat can copy a record, request id and all: only the same record is a redelivery."""
    st = state()
    first = RawRequest(**{**_fields(signed(rid="same")), "record_id": "raw-0-1"})
    assert decided(first, st).reason.value == "ok"
    again = RawRequest(**{**_fields(first), "record_id": "raw-0-1"})
    assert decided(again, st).reason.value == "ok"
    copy = RawRequest(**{**_fields(first), "record_id": "raw-0-2"})
    assert decided(copy, st).reason.value == "hmac_replay"


def _fields(r: RawRequest) -> dict[str, Any]:
    return r._asdict()
