"""Every Jitsu/EventNative key config form."""

import hashlib

import orjson
import pytest

from workers.auth import secrets
from workers.keys import jitsu


def seal(s: str) -> str:
    return "fernet:sealed-" + hashlib.sha256(s.encode()).hexdigest()[:8]


def parse(value: object, s2s: tuple[str, ...] = ()) -> list[jitsu.KeyRecord]:  # type: ignore[name-defined]
    return jitsu.parse(value, seal, "config", s2s)


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def test_list_of_objects() -> None:
    [k] = parse([{"id": "shop", "client_secret": "c", "server_secret": "s",
                  "origins": ["*.shop.com"]}])
    assert k.id == "shop"
    assert [r.digest for r in k.client_secrets] == [secrets.digest("c")]
    assert [r.digest for r in k.server_secrets] == [secrets.digest("s")]
    assert k.origins == ("*.shop.com",) and k.source == "config"


def test_plain_string_is_a_client_secret_with_md5_id() -> None:
    [k] = parse("abc123")
    assert k.id == md5("abc123")
    assert k.client_secrets[0].digest == secrets.digest("abc123") and not k.server_secrets


def test_list_of_strings() -> None:
    keys = parse(["a", "b"])
    assert [k.id for k in keys] == [md5("a"), md5("b")]


def test_json_object_string() -> None:
    payload = orjson.dumps({"tokens": [{"id": "j", "client_secret": "x"}]}).decode()
    [k] = parse(payload)
    assert k.id == "j" and k.client_secrets[0].digest == secrets.digest("x")


def test_md5_id_uses_untrimmed_secrets_but_secrets_are_trimmed() -> None:
    [k] = parse([{"client_secret": " c ", "server_secret": "s\n"}])
    assert k.id == md5(" c s\n")
    assert k.client_secrets[0].digest == secrets.digest("c")
    assert k.server_secrets[0].digest == secrets.digest("s")


def test_s2s_auth_strings_become_server_keys() -> None:
    keys = parse(None, s2s=("srv",))
    assert [(k.id, k.server_secrets[0].digest) for k in keys] == [(md5("srv"),
                                                                   secrets.digest("srv"))]


def test_rotation_lists_with_not_after() -> None:
    [k] = parse([{"id": "r", "client_secrets": [
        {"secret": "old", "not_after": "2030-01-01T00:00:00Z"}, "new"]}])
    assert [(r.digest, r.not_after) for r in k.client_secrets] == [
        (secrets.digest("old"), 1893456000.0), (secrets.digest("new"), None)]


def test_extended_fields_and_sealed_access_secret() -> None:
    [k] = parse([{"id": "x", "server_secret": "s", "access_key": "AK", "access_secret": "plain",
                  "allowed_events": ["page"], "jwt_providers": ["auth0"], "policy": "strict",
                  "disabled": True, "expires_at": "2030-01-01T00:00:00+00:00"}])
    assert k.access_key == "AK" and k.access_secret == seal("plain")
    assert (k.allowed_events, k.jwt_providers, k.policy, k.disabled, k.expires_at) == (
        ("page",), ("auth0",), "strict", True, 1893456000.0)


def test_default_key() -> None:
    k = jitsu.default_key("gen", "config")
    assert k.id == "defaultid"
    assert k.client_secrets[0].digest == k.server_secrets[0].digest == secrets.digest("gen")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (42, "api_keys must be a list, a string or a URL, not int"),
        ([{"id": "a", "client_secret": "SECRET-1"}, {"id": "a", "client_secret": "SECRET-2"}],
         "duplicate key ids: a"),
        ([3], "api key #1 must be a mapping or a string, not int"),
        ([{"id": "o", "client_secret": "SECRET-1", "origins": 5}], "api key o: origins must be"),
        ([{"id": "o", "client_secret": "SECRET-1", "origins": ["*.shop.com", "a.*.shop.com"]}],
         "api key o: origin pattern 'a.*.shop.com' can never match an Origin: '*' can only"),
        ([{"id": "t", "client_secret": "SECRET-1", "expires_at": "soon"}],
         "api key t: 'soon' is not an RFC 3339 time"),
        ("{not json SECRET-1", "key payload is not valid JSON"),
    ],
)
def test_errors_name_the_problem_never_the_secret(value: object, message: str) -> None:
    with pytest.raises(jitsu.KeyConfigError) as err:
        parse(value)
    assert message in str(err.value)
    assert "SECRET" not in str(err.value)


def test_empty_secret_is_refused_not_hashed() -> None:
    with pytest.raises(jitsu.KeyConfigError, match="non-empty"):
        parse([{"id": "e", "client_secrets": ["  "]}])


def test_urls_must_be_fetched_first() -> None:
    with pytest.raises(jitsu.KeyConfigError):
        parse("https://example.invalid/tokens")


def test_keys_sharing_an_access_key_are_refused() -> None:
    with pytest.raises(jitsu.KeyConfigError, match="keys share an access_key: x, y"):
        parse([{"id": "x", "access_key": "AK", "access_secret": "s1"},
               {"id": "y", "access_key": "AK", "access_secret": "s2"}])
