"""Reading a raw-events record that any producer may have written."""

from workers.auth.request import MAX_REQUEST_ID, TRUNCATED, RawRequest

FALLBACK = "raw-events-2-17"


def read(key: bytes | None, headers: list[tuple[str, bytes | None]]) -> RawRequest:
    return RawRequest.from_record(key, b"{}", headers, fallback_id=FALLBACK)


def test_request_id_from_header_then_key_then_fallback() -> None:
    assert read(b"k1", [("eg-request-id", b"r1")]).request_id == "r1"
    assert read(b"k1", []).request_id == "k1"
    assert read(None, []).request_id == FALLBACK


def test_underivable_ids_use_the_record_position() -> None:
    for key, header in [
        (b"\xff\xfe", b"\xc3\x28"),  # invalid UTF-8 in both
        (b"x" * (MAX_REQUEST_ID + 1), b"y" * (MAX_REQUEST_ID + 1)),  # too long to key outputs
        (b"a\nb", b"c\x00d"),  # control characters
        (b"", b""),
    ]:
        req = read(key, [("eg-request-id", header)])
        assert req.request_id == FALLBACK, (key, header)
        assert req.record_id == FALLBACK


def test_huge_context_headers_are_truncated() -> None:
    req = read(b"k", [("eg-user-agent", b"A" * 350_000), ("eg-origin", b"o" * 5000),
                      ("eg-path", b"/" * 9000), ("eg-ip", b"1" * 500),
                      ("eg-query", b"q" * 10_000), ("eg-received-at", b"2" * 100)])
    assert req.user_agent is not None and len(req.user_agent) == 1024
    assert req.user_agent.endswith(TRUNCATED)
    assert req.origin is not None and len(req.origin) == 1024
    assert req.path is not None and len(req.path) == 2048
    assert req.ip is not None and len(req.ip) == 64
    assert req.query is not None and len(req.query) == 4096
    assert req.received_epoch() is None


def test_credentials_are_not_truncated() -> None:
    jwt = "e" * 20_000
    req = read(b"k", [("eg-jwt", jwt.encode()), ("eg-signature", b"s" * 5000)])
    assert req.jwt == jwt and req.signature == "s" * 5000


def test_invalid_utf8_headers_do_not_raise() -> None:
    req = read(b"k", [("eg-origin", b"\xff\xfe"), ("eg-endpoint", b"\xff"), ("eg-token", None)])
    assert req.origin == "\ufffd\ufffd" and req.endpoint is None and req.token is None


def test_a_placeholder_for_an_unreadable_record_is_malformed() -> None:
    from workers.auth.authorize import AuthState, decide
    from workers.auth.reasons import Reason
    from workers.auth.request import UNREADABLE_HEADER

    req = RawRequest.from_record(None, None, [(UNREADABLE_HEADER, b"UnicodeDecodeError")],
                                 fallback_id=FALLBACK)
    [d] = decide(req, AuthState(), 0.0)
    assert (d.request_id, d.reason, d.detail) == (
        FALLBACK, Reason.MALFORMED_EVENT, "unreadable record (UnicodeDecodeError)")


def test_a_credential_header_twice_is_named_and_context_twice_is_not() -> None:
    assert read(b"k", [("eg-token", b"a"), ("eg-token", b"b")]).duplicate == "eg-token"
    assert read(b"k", [("eg-origin", b"a"), ("eg-token", b"t"),
                       ("eg-origin", b"a")]).duplicate == "eg-origin"
    assert read(b"k", [("eg-user-agent", b"a"), ("eg-user-agent", b"b")]).duplicate is None
