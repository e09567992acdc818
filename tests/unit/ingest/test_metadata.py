import base64
import hashlib
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest

from workers.auth import secrets
from workers.ingest import metadata


def build(body: object, query: list[tuple[str, str]] | None = None,
          headers: dict[str, str] | None = None, endpoint: str = "client") -> metadata.RawRecord:
    raw = orjson.dumps(body)
    return metadata.build(endpoint=endpoint, request_id="rid", received_at="2026-01-01T00:00:00Z",
                          body=raw, doc=orjson.loads(raw), query=query or [],
                          headers=headers or {}, path="/api/v1/event", ip="10.0.0.1")


def hdrs(rec: metadata.RawRecord) -> dict[str, str]:
    return {k: v.decode() for k, v in rec.headers}


def test_token_is_hashed_and_query_secrets_dropped() -> None:
    rec = build({"event_type": "page"}, [("token", "s3cret"), ("p_x", "s3cret"), ("utm", "1")],
                {"origin": "https://a.com", "user-agent": "UA"})
    h = hdrs(rec)
    assert h["eg-token"] == secrets.digest("s3cret")
    assert h["eg-query"] == "utm=1" and h["eg-endpoint"] == "client"
    assert (h["eg-origin"], h["eg-user-agent"], h["eg-ip"]) == ("https://a.com", "UA", "10.0.0.1")
    assert rec.key == b"rid" and b"s3cret" not in b"".join(v for _, v in rec.headers)


def test_body_is_untouched_without_api_key() -> None:
    raw = b'{"event_type": "page",  "x": 1}'
    rec = metadata.build(endpoint="client", request_id="r", received_at="t", body=raw,
                         doc=orjson.loads(raw), query=[], headers={}, path="/", ip=None)
    assert rec.value == raw


def test_api_key_in_body_is_removed_and_used_as_the_secret() -> None:
    rec = build([{"event_type": "a", "api_key": "node-secret"}, {"event_type": "b",
                                                                 "api_key": "node-secret"}],
                endpoint="s2s")
    assert b"node-secret" not in rec.value
    assert orjson.loads(rec.value) == [{"event_type": "a"}, {"event_type": "b"}]
    assert hdrs(rec)["eg-token"] == secrets.digest("node-secret")


def test_api_key_in_wrapped_batch_removed_and_used() -> None:
    rec = build({"events": [{"api_key": "same"}]}, headers={"x-auth-token": "same"})
    assert b"same" not in rec.value
    assert hdrs(rec)["eg-token"] == secrets.digest("same")


@pytest.mark.parametrize(("doc", "query", "headers", "places"), [
    ({"events": [{"api_key": "body"}]}, [], {"x-auth-token": "header"},
     "header X-Auth-Token, body api_key"),
    ([{"api_key": "one"}, {"api_key": "two"}], [], {}, "body api_key, body api_key"),
    ({}, [("token", "a"), ("token", "b")], {}, "query token, query token"),
    ({}, [("token", "a"), ("p_x", "b")], {}, "query token, query p_x"),
    ({}, [("token", "a")], {"x-auth-token": "b"}, "query token, header X-Auth-Token"),
    ({}, [], {"x-auth-token": "a", "api_key": "b"}, "header X-Auth-Token, header api_key"),
    ({}, [("token", "a")], {"authorization": "Basic Yjo="}, "query token, Basic user"),
])
def test_two_different_api_secrets_are_ambiguous(doc: Any, query: list[tuple[str, str]],
                                                 headers: dict[str, str], places: str) -> None:
    with pytest.raises(metadata.Ambiguous) as err:
        build(doc, query, headers=headers)
    assert str(err.value) == (f"the API secret is sent in {places} with different values; "
                              "send it once")


@pytest.mark.parametrize("name", ["Origin", "X-Auth-Token", "api_key", "Authorization",
                                  "X-Access-Key", "X-Signature", "X-Timestamp", "X-Nonce"])
def test_a_credential_header_sent_twice_is_ambiguous(name: str) -> None:
    with pytest.raises(metadata.Ambiguous, match=f"header {name} is sent more than once"):
        metadata.headers_once([(name, "v"), ("User-Agent", "x"), (name.lower(), "v")])
    assert metadata.headers_once([("Accept", "a"), ("accept", "b")]) == {"accept": "b"}


def test_signed_request_keyed_by_nonce() -> None:
    rec = build({}, headers={"x-access-key": "AK", "x-timestamp": "1", "x-nonce": "n-1",
                             "x-signature": "ab"})
    h = hdrs(rec)
    assert rec.key == b"n-1" and (h["eg-access-key"], h["eg-nonce"]) == ("AK", "n-1")


def test_jwt_travels_as_its_own_header() -> None:
    assert hdrs(build({}, headers={"authorization": "Bearer a.b.c"}))["eg-jwt"] == "a.b.c"


def raw(rec: metadata.RawRecord) -> dict[str, bytes]:
    return dict(rec.headers)


def test_header_with_invalid_utf8_is_stored_as_sent_never_raises() -> None:
    # aiohttp decodes header bytes as UTF-8 with surrogateescape: b"\xff" -> "\udcff".
    bad = b"a\xff\xfeb".decode("utf-8", "surrogateescape")
    rec = build({}, headers={"user-agent": bad, "origin": bad, "x-nonce": bad,
                             "x-signature": bad, "x-access-key": bad, "x-timestamp": bad,
                             "authorization": "Bearer " + bad})
    h = raw(rec)
    for name in ("eg-user-agent", "eg-origin", "eg-nonce", "eg-signature", "eg-access-key",
                 "eg-timestamp", "eg-jwt"):
        assert h[name] == b"a\xff\xfeb", name
    assert rec.key == b"a\xff\xfeb"  # the nonce


def test_undecodable_token_is_digested_over_its_bytes() -> None:
    bad = b"s3cr\xffet".decode("utf-8", "surrogateescape")
    h = hdrs(build({}, headers={"x-auth-token": bad}))
    assert h["eg-token"] == "sha256:" + hashlib.sha256(b"s3cr\xffet").hexdigest()
    assert hdrs(build({}, [("token", "caf\u00e9")]))["eg-token"] == secrets.digest("caf\u00e9")


def test_basic_auth_that_is_not_ascii_is_no_credential_and_no_error() -> None:
    bad = "Basic " + b"\xff\xfe".decode("utf-8", "surrogateescape")
    assert "eg-token" not in hdrs(build({}, headers={"authorization": bad}))
    assert "eg-token" not in hdrs(build({}, headers={"authorization": "Basic \u00e9t\u00e9"}))
    good = "Basic " + base64.b64encode(b"user-secret:").decode()
    assert hdrs(build({}, headers={"authorization": good}))["eg-token"] == secrets.digest(
        "user-secret")


def test_descriptive_headers_are_capped_credentials_are_not() -> None:
    long_jwt = "e" * 6000 + "." + "p" * 2000 + ".s"
    rec = metadata.build(
        endpoint="client", request_id="r", received_at="t", body=b"{}", doc={},
        query=[("q", "x" * 9000)],
        headers={"user-agent": "u" * 5000, "origin": "o" * 5000, "authorization":
                 f"Bearer {long_jwt}", "x-signature": "a" * 3000, "x-nonce": "n" * 3000},
        path="/api." + "p" * 5000, ip="10.0.0.1")
    h = raw(rec)
    assert len(h["eg-user-agent"]) == 1024 and len(h["eg-origin"]) == 1024
    assert len(h["eg-path"]) == 2048 and len(h["eg-query"]) == 4096
    assert h["eg-jwt"] == long_jwt.encode()
    assert h["eg-signature"] == b"a" * 3000 and h["eg-nonce"] == b"n" * 3000


def test_cut_never_splits_a_character() -> None:
    text = "\u00e9" * 600  # 2 bytes each
    assert metadata.cut(text.encode(), 1023) == ("\u00e9" * 511).encode()
    assert metadata.cut("\U0001f600\U0001f600".encode(), 7) == "\U0001f600".encode()
    assert metadata.cut(b"abc", 10) == b"abc"
    h = raw(build({}, headers={"user-agent": "\u20ac" * 1000}))
    assert h["eg-user-agent"] == ("\u20ac" * 341).encode()  # 1023 bytes, not 1024


def test_secret_looking_query_parameters_are_digested() -> None:
    query = [("Token", "t1"), ("api_key", "k1"), ("APIKEY", "k2"), ("x-api-key", "k3"),
             ("secret", "s1"), ("client_secret", "s2"), ("password", "p1"),
             ("access_token", "a1"), ("Signature", "g1"), ("utm_source", "news"),
             ("page", "2"), ("empty_token", "")]
    got = parse_qsl(hdrs(build({}, query))["eg-query"], keep_blank_values=True)
    expected = {"Token": "t1", "api_key": "k1", "APIKEY": "k2", "x-api-key": "k3",
                "secret": "s1", "client_secret": "s2", "password": "p1", "access_token": "a1",
                "Signature": "g1"}
    assert dict(got) == {**{k: secrets.digest(v) for k, v in expected.items()},
                         "utm_source": "news", "page": "2", "empty_token": ""}
    assert "sha256:" in hdrs(build({}, [("apikey", "v")]))["eg-query"]  # readable, not %3A


def test_credential_rules_do_not_change() -> None:
    # `?Token=` is not the token (Jitsu reads only `token`): digested in eg-query, not eg-token.
    h = hdrs(build({}, [("Token", "not-a-credential")]))
    assert "eg-token" not in h and "not-a-credential" not in h["eg-query"]
    h = hdrs(build({}, [("token", "cred"), ("p_abc", "cred"), ("keep", "1")]))
    assert h["eg-token"] == secrets.digest("cred") and h["eg-query"] == "keep=1"
