from workers.auth.reasons import Reason

DESIGN_CODES = {
    "ok", "missing_credentials", "unknown_key", "wrong_endpoint", "origin_not_allowed",
    "key_disabled", "key_expired", "event_not_allowed", "anonymous_not_allowed",
    "jwt_required", "jwt_invalid", "hmac_bad_signature", "hmac_stale_timestamp",
    "hmac_replay", "malformed_event", "payload_too_large",
}


def test_codes_match_the_design_exactly() -> None:
    assert {r.value for r in Reason} == DESIGN_CODES


def test_only_ok_is_accepted_and_every_code_has_scope_and_description() -> None:
    assert [r for r in Reason if r.accepted] == [Reason.OK]
    for r in Reason:
        assert r.scope in ("request", "event") and r.description
    assert Reason("unknown_key") is Reason.UNKNOWN_KEY  # type: ignore[call-arg]
    assert str(Reason.OK) == "ok"
