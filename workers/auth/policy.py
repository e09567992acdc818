"""The three event lists, and what they decide for one event type.

Precedence (DESIGN.md): a present but invalid JWT is rejected before this is
asked; then `modify_with_jwt` over `modify_without_jwt` over `anonymous_events`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from workers.auth.decision import Identity
from workers.auth.reasons import Reason


@dataclass(frozen=True, slots=True)
class EventPolicy:
    anonymous_events: tuple[str, ...] = ()  # empty: every event
    modify_without_jwt: tuple[str, ...] = ("form.submit", "client.login")
    modify_with_jwt: tuple[str, ...] = ("form.submit",)  # empty: no event needs a JWT
    # Who owns it: the config (None) or an operator (admin, cli). Not part of what it decides.
    source: str | None = field(default=None, compare=False)

    def decide(self, event_type: str | None, jwt_valid: bool) -> tuple[Reason, Identity | None]:
        if jwt_valid:
            return Reason.OK, Identity.VERIFIED
        t = event_type or ""
        if t in self.modify_with_jwt:
            return Reason.JWT_REQUIRED, None
        if t in self.modify_without_jwt:
            return Reason.OK, Identity.UNVERIFIED
        if not self.anonymous_events or t in self.anonymous_events:
            return Reason.OK, Identity.ANONYMOUS
        return Reason.ANONYMOUS_NOT_ALLOWED, None


DEFAULT = EventPolicy()


def policy_for(name: str | None, policies: Mapping[str, EventPolicy]) -> EventPolicy:
    """The named policy, else the `default` one, else the built-in defaults."""
    if name and name in policies:
        return policies[name]
    return policies.get("default", DEFAULT)
