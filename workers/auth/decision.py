"""What the decision core returns: one Decision per event."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, NamedTuple

from workers.auth.reasons import Reason


class Method(StrEnum):
    CLIENT_SECRET = "client_secret"
    SERVER_SECRET = "server_secret"
    HMAC = "hmac"
    JWT = "jwt"


class Identity(StrEnum):
    VERIFIED = "verified"  # a valid JWT
    UNVERIFIED = "unverified"  # may change customer data without a JWT
    ANONYMOUS = "anonymous"  # must not change customer data


# NamedTuples, like RawRequest: immutable and cheap to build, once or more per event.
class Decision(NamedTuple):
    request_id: str
    reason: Reason
    detail: str = ""
    key_id: str | None = None
    method: Method | None = None
    identity: Identity | None = None
    subject: str | None = None
    event: Any = None  # the parsed event, when it parsed
    event_type: str | None = None

    @property
    def accepted(self) -> bool:
        return self.reason.accepted
