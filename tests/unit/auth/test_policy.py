"""DESIGN.md's event-list table, row by row."""

import pytest

from workers.auth.decision import Identity
from workers.auth.policy import DEFAULT, EventPolicy, policy_for
from workers.auth.reasons import Reason

P = EventPolicy(anonymous_events=("page",), modify_without_jwt=("login", "both"),
                modify_with_jwt=("purchase", "both"))


@pytest.mark.parametrize(
    ("etype", "jwt_valid", "expected"),
    [
        ("anything", True, (Reason.OK, Identity.VERIFIED)),
        ("purchase", False, (Reason.JWT_REQUIRED, None)),
        ("both", False, (Reason.JWT_REQUIRED, None)),  # modify_with_jwt wins
        ("login", False, (Reason.OK, Identity.UNVERIFIED)),
        ("page", False, (Reason.OK, Identity.ANONYMOUS)),
        ("track", False, (Reason.ANONYMOUS_NOT_ALLOWED, None)),
        (None, False, (Reason.ANONYMOUS_NOT_ALLOWED, None)),
    ],
)
def test_table(etype: str | None, jwt_valid: bool,
               expected: tuple[Reason, Identity | None]) -> None:
    assert P.decide(etype, jwt_valid) == expected


def test_defaults() -> None:
    assert DEFAULT.decide("form.submit", False) == (Reason.JWT_REQUIRED, None)
    assert DEFAULT.decide("client.login", False) == (Reason.OK, Identity.UNVERIFIED)
    assert DEFAULT.decide("page", False) == (Reason.OK, Identity.ANONYMOUS)


def test_policy_for() -> None:
    assert policy_for("x", {"x": P}) is P
    assert policy_for("missing", {"default": P}) is P
    assert policy_for(None, {}) is DEFAULT
