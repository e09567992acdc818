"""Signed requests: HMAC-SHA256 of the access secret over a canonical string.

    "{timestamp}\n{nonce}\n{METHOD}\n{path}\n{sha256 hex of the body}"

`timestamp` is milliseconds since the epoch and must be within WINDOW_S of the
worker's clock (handed in); a nonce seen within that window is a replay. The
body is the exact bytes received, so the ingest never re-encodes a body.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from dataclasses import dataclass

from workers.auth.reasons import Reason

WINDOW_S = 300.0
MAX_NONCE_LEN = 128


def canonical(timestamp: str, nonce: str, method: str, path: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return f"{timestamp}\n{nonce}\n{method.upper()}\n{path}\n{digest}".encode()


def sign(secret: str, timestamp: str, nonce: str, method: str, path: str, body: bytes) -> str:
    """Lower-case hex, as X-Signature carries it."""
    return hmac.new(secret.encode(), canonical(timestamp, nonce, method, path, body),
                    hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Check:
    reason: Reason
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.reason is Reason.OK


def verify(secret: str, timestamp: str | None, nonce: str | None, signature: str | None,
           method: str, path: str, body: bytes, now: float) -> Check:
    if not timestamp or not nonce or not signature:
        return Check(Reason.MISSING_CREDENTIALS,
                     "a signed request needs X-Timestamp, X-Nonce and X-Signature")
    if len(nonce) > MAX_NONCE_LEN:
        return Check(Reason.HMAC_BAD_SIGNATURE, "X-Nonce is too long")
    try:
        sent_ms = int(timestamp)
    except ValueError:
        return Check(Reason.HMAC_STALE_TIMESTAMP, "X-Timestamp must be ms since the epoch")
    if abs(now - sent_ms / 1000.0) > WINDOW_S:
        return Check(Reason.HMAC_STALE_TIMESTAMP,
                     f"X-Timestamp is more than {WINDOW_S:.0f} s from the server's clock")
    expected = sign(secret, timestamp, nonce, method, path, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        return Check(Reason.HMAC_BAD_SIGNATURE, "the signature does not match the request")
    return Check(Reason.OK)


class NonceCache:
    """Nonces used within the window. Bounded.

    New entries are also queued in `fresh`, for the worker to publish to the
    nonces topic, from which every worker fills its cache (`remember`): so a
    replay is caught after a rebalance or restart too.
    """

    def __init__(self, window_s: float = WINDOW_S, max_entries: int = 1_000_000) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self._seen: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self.fresh: list[tuple[str, str, float]] = []  # (key, delivery, first seen)

    def seen_before(self, key: str, delivery: str, now: float) -> bool:
        """Record `key` (key id + nonce); True when another record used it in the window.

        `delivery` names the record (topic-partition-offset): the same record read
        again is a redelivery (at-least-once), not a replay, and must get the same
        decision as the first time.
        """
        self._expire(now)
        first = self._seen.get(key)
        if first is not None:
            return first[1] != delivery
        self._seen[key] = (now, delivery)
        self.fresh.append((key, delivery, now))
        return False

    def __len__(self) -> int:
        return len(self._seen)

    def remember(self, key: str, delivery: str, at: float, now: float) -> None:
        """A nonce another worker (or this one, earlier) published."""
        if now - at <= 2 * self.window_s and key not in self._seen:
            self._seen[key] = (at, delivery)

    def _expire(self, now: float) -> None:
        while self._seen:
            oldest_key, (at, _) = next(iter(self._seen.items()))
            if now - at <= 2 * self.window_s and len(self._seen) < self.max_entries:
                return
            del self._seen[oldest_key]
