import orjson

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


def test_api_key_in_wrapped_batch_removed_but_header_secret_wins() -> None:
    rec = build({"events": [{"api_key": "body"}]}, headers={"x-auth-token": "header"})
    assert b"body" not in rec.value.replace(b"events", b"")
    assert hdrs(rec)["eg-token"] == secrets.digest("header")


def test_signed_request_keyed_by_nonce() -> None:
    rec = build({}, headers={"x-access-key": "AK", "x-timestamp": "1", "x-nonce": "n-1",
                             "x-signature": "ab"})
    h = hdrs(rec)
    assert rec.key == b"n-1" and (h["eg-access-key"], h["eg-nonce"]) == ("AK", "n-1")


def test_jwt_travels_as_its_own_header() -> None:
    assert hdrs(build({}, headers={"authorization": "Bearer a.b.c"}))["eg-jwt"] == "a.b.c"
