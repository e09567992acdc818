"""The auth-config record format: round trips and refusal of plaintext secrets."""

import re

import orjson
import pytest

from workers.auth import secrets
from workers.auth.keys import KeyRecord, SecretRef
from workers.auth.policy import EventPolicy
from workers.keys import records


def test_key_round_trip() -> None:
    rec = KeyRecord(id="shop", client_secrets=(SecretRef(secrets.digest("c"), 1893456000.0),),
                    server_secrets=(SecretRef(secrets.digest("s")),), origins=("*.a.com",),
                    access_key="AK", access_secret="fernet:tok", allowed_events=("page",),
                    jwt_providers=("p",), policy="x", disabled=True, expires_at=1893456000.5,
                    source="config", created_at=1800000000.123)
    key, value = records.encode_key(rec)
    assert key == b"key/shop"
    assert records.decode_key("key/shop", records.loads("key/shop", value)) == rec


def test_convenience_single_digest_fields() -> None:
    rec = records.decode_key("key/k", {"client_secret": secrets.digest("c")})
    assert rec.id == "k" and rec.client_secrets == (SecretRef(secrets.digest("c")),)


@pytest.mark.parametrize(
    "value",
    [
        {"id": "k", "client_secret": "plaintext-secret"},
        {"id": "k", "server_secrets": ["sha256:short"]},
        {"id": "k", "client_secrets": [{"digest": "plaintext-secret"}]},
        {"id": "k", "access_secret": "plaintext-secret"},
    ],
)
def test_plaintext_secrets_are_refused_without_echoing_them(value: dict[str, object]) -> None:
    with pytest.raises(records.PlaintextSecret) as err:
        records.decode_key("key/k", value)
    assert "key/k" in str(err.value) and "plaintext-secret" not in str(err.value)


@pytest.mark.parametrize(
    ("record_key", "raw", "message"),
    [
        ("key/a", b"{", "key/a: value is not JSON"),
        ("key/a", b"[1]", "key/a: value must be a JSON object"),
    ],
)
def test_loads_errors(record_key: str, raw: bytes, message: str) -> None:
    with pytest.raises(records.InvalidRecord, match=message):
        records.loads(record_key, raw)


def test_a_record_with_a_pattern_that_can_never_match_is_invalid() -> None:
    # Published by something other than apply_config: the worker keeps the key unknown.
    with pytest.raises(records.InvalidRecord,
                       match=re.escape("key/a: origin pattern 'https://a.io#' can never match")):
        records.decode_key("key/a", {"id": "a", "origins": ["https://a.io#"]})


def test_id_must_match_record_key() -> None:
    with pytest.raises(records.InvalidRecord, match="equal to the record key"):
        records.decode_key("key/a", {"id": "b"})


def test_wrong_types_are_invalid_records() -> None:
    with pytest.raises(records.InvalidRecord, match="origins must be a list of strings"):
        records.decode_key("key/a", {"origins": [1]})
    with pytest.raises(records.InvalidRecord, match="RFC 3339"):
        records.decode_key("key/a", {"expires_at": True})


def test_policy_round_trip() -> None:
    p = EventPolicy(anonymous_events=("page",), modify_without_jwt=(), modify_with_jwt=("buy",))
    key, value = records.encode_policy("strict", p)
    assert key == b"policy/strict"
    assert records.decode_policy("policy/strict", orjson.loads(value)) == p


def test_disabled_must_be_a_boolean_never_a_truthy_string() -> None:
    digest = secrets.digest("s")
    ok = records.decode_key("key/a", {"id": "a", "server_secrets": [digest], "disabled": False})
    assert ok.disabled is False
    with pytest.raises(records.InvalidRecord, match="disabled must be true or false"):
        records.decode_key("key/a", {"id": "a", "server_secrets": [digest], "disabled": "false"})
