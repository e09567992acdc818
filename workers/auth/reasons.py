"""The one enum of reason codes. Each code carries what routing needs to know.

Like aiokafka's errors, callers read attributes (`accepted`, `scope`) instead of
keeping their own lists of codes.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # (value, scope, description). scope "request": decided once for the whole
    # request (credentials, size); "event": decided per event in a batch.
    OK = ("ok", "event", "accepted")
    MISSING_CREDENTIALS = ("missing_credentials", "request", "no API secret, JWT or signature")
    UNKNOWN_KEY = ("unknown_key", "request", "the secret or access key matches no key")
    WRONG_ENDPOINT = (
        "wrong_endpoint", "request", "a client secret on /s2s, or a server secret on /event"
    )
    ORIGIN_NOT_ALLOWED = (
        "origin_not_allowed", "request", "Origin missing or not in the key's list"
    )
    KEY_DISABLED = ("key_disabled", "request", "the key is disabled")
    KEY_EXPIRED = ("key_expired", "request", "the key (or this secret) is past its expiry")
    EVENT_NOT_ALLOWED = ("event_not_allowed", "event", "event type not in the key's allowed_events")
    ANONYMOUS_NOT_ALLOWED = (
        "anonymous_not_allowed", "event", "event type not allowed for anonymous senders"
    )
    JWT_REQUIRED = ("jwt_required", "event", "event type needs a valid JWT")
    JWT_INVALID = ("jwt_invalid", "request", "the JWT is present but not valid (see detail)")
    HMAC_BAD_SIGNATURE = ("hmac_bad_signature", "request", "the request signature does not match")
    HMAC_STALE_TIMESTAMP = ("hmac_stale_timestamp", "request", "X-Timestamp outside the window")
    HMAC_REPLAY = ("hmac_replay", "request", "this nonce was already used")
    MALFORMED_EVENT = ("malformed_event", "event", "the body or event is not a JSON object")
    PAYLOAD_TOO_LARGE = ("payload_too_large", "request", "the body is over max_body_bytes")

    scope: str
    description: str

    def __new__(cls, value: str, scope: str, description: str) -> Reason:
        member = str.__new__(cls, value)
        member._value_ = value
        member.scope = scope
        member.description = description
        return member

    @property
    def accepted(self) -> bool:
        return self is Reason.OK

    def __str__(self) -> str:
        return self.value
