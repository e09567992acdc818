"""The decision core, end to end on pure inputs."""

import orjson
import pytest

from workers.auth import secrets
from workers.auth.authorize import AuthState, decide
from workers.auth.decision import Identity, Method
from workers.auth.keys import KeyIndex, KeyRecord, SecretRef
from workers.auth.policy import EventPolicy
from workers.auth.reasons import Reason
from workers.auth.request import RawRequest

NOW = 1_800_000_000.0


def key(**kw: object) -> KeyRecord:
    fields: dict[str, object] = {
        "id": "shop",
        "client_secrets": (SecretRef(secrets.digest("browser")),),
        "server_secrets": (SecretRef(secrets.digest("backend")),),
    }
    fields.update(kw)
    return KeyRecord(**fields)  # type: ignore[arg-type]


def state(*records: KeyRecord, **policies: EventPolicy) -> AuthState:
    index = KeyIndex()
    for r in records:
        index.put(r)
    return AuthState(keys=index, policies=dict(policies), max_body_bytes=1000)


def req(body: object = None, *, token: str | None = "browser", endpoint: str | None = "client",
        raw: bytes | None = None, **kw: object) -> RawRequest:
    payload = raw if raw is not None else orjson.dumps(body if body is not None else
                                                       {"event_type": "page"})
    return RawRequest(request_id="r1", body=payload, endpoint=endpoint,
                      token=secrets.digest(token) if token else None, **kw)  # type: ignore[arg-type]


def one(request: RawRequest, st: AuthState) -> tuple[Reason, str]:
    [d] = decide(request, st, NOW)
    return d.reason, d.detail


def test_client_secret_accepted_as_anonymous() -> None:
    [d] = decide(req(), state(key()), NOW)
    assert (d.reason, d.key_id, d.method, d.identity) == (
        Reason.OK, "shop", Method.CLIENT_SECRET, Identity.ANONYMOUS)
    assert d.event == {"event_type": "page"} and d.event_type == "page"


def test_server_secret_on_s2s() -> None:
    [d] = decide(req(token="backend", endpoint="s2s"), state(key()), NOW)
    assert (d.reason, d.method) == (Reason.OK, Method.SERVER_SECRET)


def test_missing_and_unknown() -> None:
    assert one(req(token=None), state(key()))[0] is Reason.MISSING_CREDENTIALS
    assert one(req(token="nope"), state(key()))[0] is Reason.UNKNOWN_KEY


@pytest.mark.parametrize(("token", "endpoint"), [("browser", "s2s"), ("backend", "client")])
def test_wrong_endpoint(token: str, endpoint: str) -> None:
    assert one(req(token=token, endpoint=endpoint), state(key()))[0] is Reason.WRONG_ENDPOINT


def test_origin_enforced_for_browser_keys_only() -> None:
    st = state(key(origins=("*.shop.com",)))
    assert one(req(origin="https://a.shop.com"), st)[0] is Reason.OK
    assert one(req(origin="https://evil.io"), st) == (
        Reason.ORIGIN_NOT_ALLOWED, "origin evil.io not in the key's origins")
    assert one(req(origin=None), st)[0] is Reason.ORIGIN_NOT_ALLOWED
    assert one(req(origin="null"), st)[0] is Reason.ORIGIN_NOT_ALLOWED
    assert one(req(token="backend", endpoint="s2s", origin=None), st)[0] is Reason.OK


def test_disabled_and_expired() -> None:
    assert one(req(), state(key(disabled=True)))[0] is Reason.KEY_DISABLED
    assert one(req(), state(key(expires_at=NOW - 1)))[0] is Reason.KEY_EXPIRED
    assert one(req(), state(key(expires_at=NOW + 60)))[0] is Reason.OK


def test_rotation_overlap_and_secret_not_after() -> None:
    rotated = key(client_secrets=(SecretRef(secrets.digest("old"), not_after=NOW + 10),
                                  SecretRef(secrets.digest("new"))))
    assert one(req(token="old"), state(rotated))[0] is Reason.OK
    assert one(req(token="new"), state(rotated))[0] is Reason.OK
    past = key(client_secrets=(SecretRef(secrets.digest("old"), not_after=NOW - 10),))
    assert one(req(token="old"), state(past)) == (
        Reason.KEY_EXPIRED, "this secret is past its not_after")


def test_batch_yields_one_decision_per_event_with_suffixed_ids() -> None:
    body = [{"event_type": "page"}, "nope", {"event_type": "form.submit"}]
    ds = decide(req(body), state(key()), NOW)
    assert [d.request_id for d in ds] == ["r1:0", "r1:1", "r1:2"]
    assert [d.reason for d in ds] == [Reason.OK, Reason.MALFORMED_EVENT, Reason.JWT_REQUIRED]


@pytest.mark.parametrize("wrapper", ["events", "batch"])
def test_wrapped_batches(wrapper: str) -> None:
    ds = decide(req({wrapper: [{"type": "track"}, {"type": "page"}]}), state(key()), NOW)
    assert [(d.request_id, d.event_type) for d in ds] == [("r1:0", "track"), ("r1:1", "page")]


def test_bad_credentials_on_a_batch_reject_every_event() -> None:
    ds = decide(req([{"event_type": "a"}, {"event_type": "b"}], token="nope"), state(key()), NOW)
    assert [(d.request_id, d.reason, d.event_type) for d in ds] == [
        ("r1:0", Reason.UNKNOWN_KEY, "a"), ("r1:1", Reason.UNKNOWN_KEY, "b")]


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"{", "invalid JSON: unexpected end of data"),
        (b"\xff\xfe{}", "body is not valid UTF-8"),
        (b"[" * 5000 + b"]" * 5000, "JSON nested too deeply"),
        (b"", "empty body"),
        (b"42", "body is a JSON int, expected an object or array"),
        (b'"str"', "body is a JSON str, expected an object or array"),
        (b"[]", "empty batch"),
    ],
)
def test_malformed_bodies(raw: bytes, detail: str) -> None:
    st = state(key())
    st.max_body_bytes = 100_000
    assert one(req(raw=raw), st) == (Reason.MALFORMED_EVENT, detail)


def test_malformed_body_with_bad_credentials_reports_the_credentials() -> None:
    assert one(req(raw=b"{", token="nope"), state(key()))[0] is Reason.UNKNOWN_KEY


def test_payload_too_large() -> None:
    assert one(req(raw=b"{" + b" " * 2000 + b"}"), state(key())) == (
        Reason.PAYLOAD_TOO_LARGE, "2002 bytes > 1000")


def test_missing_endpoint_header() -> None:
    assert one(req(endpoint=None), state(key()))[0] is Reason.MALFORMED_EVENT


def test_api_key_field_never_leaves_the_core() -> None:
    [d] = decide(req({"event_type": "page", "api_key": "browser"}), state(key()), NOW)
    assert d.event == {"event_type": "page"}


def test_allowed_events() -> None:
    st = state(key(allowed_events=("page", "track")))
    assert one(req({"event_type": "track"}), st)[0] is Reason.OK
    assert one(req({"event_type": "purchase"}), st) == (
        Reason.EVENT_NOT_ALLOWED, "event type 'purchase' not in allowed_events")


def test_key_policy_override_and_default_policy() -> None:
    strict = EventPolicy(anonymous_events=("page",), modify_without_jwt=(), modify_with_jwt=())
    st = state(key(policy="strict"), strict=strict)
    assert one(req({"event_type": "page"}), st)[0] is Reason.OK
    assert one(req({"event_type": "track"}), st)[0] is Reason.ANONYMOUS_NOT_ALLOWED
    st2 = state(key(), default=strict)
    assert one(req({"event_type": "track"}), st2)[0] is Reason.ANONYMOUS_NOT_ALLOWED


def test_present_jwt_without_provider_is_rejected_never_downgraded() -> None:
    assert one(req(jwt="a.b.c"), state(key())) == (Reason.JWT_INVALID, "no_provider")


def test_wrong_types_in_event_fields_do_not_crash() -> None:
    [d] = decide(req({"event_type": ["x"], "event": 5, "type": None}), state(key()), NOW)
    assert d.reason is Reason.OK and d.event_type is None


def test_one_secret_for_both_endpoints_works_on_both() -> None:
    """Jitsu's single-secret keys, and the generated `defaultid` key."""
    both = key(client_secrets=(SecretRef(secrets.digest("same")),),
               server_secrets=(SecretRef(secrets.digest("same")),))
    st = state(both)
    [browser] = decide(req(token="same"), st, NOW)
    [backend] = decide(req(token="same", endpoint="s2s"), st, NOW)
    assert (browser.reason, browser.method) == (Reason.OK, Method.CLIENT_SECRET)
    assert (backend.reason, backend.method) == (Reason.OK, Method.SERVER_SECRET)


def test_removing_one_key_keeps_another_key_with_the_same_secret() -> None:
    st = state(key(id="a"), key(id="b"))
    st.keys.remove("a")
    [d] = decide(req(), st, NOW)
    assert (d.reason, d.key_id) == (Reason.OK, "b")
    st.keys.remove("b")
    assert one(req(), st)[0] is Reason.UNKNOWN_KEY


def test_a_batch_over_the_cap_is_one_rejection() -> None:
    st = state(key())
    st.max_batch_events = 3
    events = [{"event_type": "page"}] * 4
    [d] = decide(req(events), st, NOW)
    assert (d.reason, d.key_id, d.request_id) == (Reason.PAYLOAD_TOO_LARGE, "shop", "r1")
    assert d.detail == "batch of 4 events > max_batch_events 3"
    assert [x.reason for x in decide(req(events[:3]), st, NOW)] == [Reason.OK] * 3
    # An unauthenticated batch keeps its credential reason.
    assert one(req({"events": events}, token="nope"), st)[0] is Reason.UNKNOWN_KEY


def test_a_huge_event_type_stays_out_of_the_detail() -> None:
    st = state(key(allowed_events=("page",)))
    st.max_body_bytes = 1_000_000
    [d] = decide(req({"event_type": "x" * 100_000}), st, NOW)
    assert d.reason is Reason.EVENT_NOT_ALLOWED and len(d.detail) < 200
