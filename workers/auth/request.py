"""A raw-events record, read into the fields the decision core needs.

The record's headers are the contract with the ingest (and with any producer
that writes raw-events directly); see DESIGN.md, "raw-events record".
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from workers.auth import secrets

ENDPOINTS = ("client", "s2s")
# Any producer may write raw-events, so header values are bounded before they are
# copied into an output record: a 350 KB user agent once made outputs too large
# for their topic and stalled the worker.
CONTEXT_LIMITS = {"origin": 1024, "ip": 64, "user-agent": 1024, "path": 2048, "query": 4096,
                  "received-at": 64}
TRUNCATED = "...[truncated]"
# Set by workers/kafka/unreadable.py on a record the Kafka client could not parse.
UNREADABLE_HEADER = "x-eventguard-unreadable"
# The eg- headers (less the prefix) a decision trusts: each may appear once in a record.
CREDENTIAL_FIELDS = frozenset({"endpoint", "token", "jwt", "access-key", "timestamp", "nonce",
                               "signature", "origin", "path", "query"})
MAX_REQUEST_ID = 200  # ingest ids are 32 hex digits; a batch adds ":<index>"


# A NamedTuple, not a frozen dataclass: as immutable, and built in a third of the
# time, which counts once per event (a frozen dataclass sets each field through
# object.__setattr__).
class RawRequest(NamedTuple):
    request_id: str
    body: bytes
    endpoint: str | None = None
    token: str | None = None  # always the digest form
    jwt: str | None = None
    access_key: str | None = None
    timestamp: str | None = None
    nonce: str | None = None
    signature: str | None = None
    received_at: str | None = None
    origin: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    path: str | None = None
    query: str | None = None
    # Where the record sits (topic-partition-offset): the same record read again is
    # a redelivery, whatever request id it claims; another record is a replay.
    record_id: str = ""
    unreadable: str | None = None  # why the Kafka client could not read the record
    duplicate: str | None = None  # a credential header the record carries more than once

    @classmethod
    def from_record(
        cls,
        key: bytes | None,
        value: bytes | None,
        headers: Iterable[tuple[str, bytes | None]],
        fallback_id: str,
    ) -> RawRequest:
        h: dict[str, str] = {}
        unreadable = duplicate = None
        for name, raw in headers:
            if name[:3] == "eg-":
                if raw is None:
                    continue
                # Undecodable bytes cannot match anything; keep them visible, not fatal.
                text = raw.decode("utf-8", "replace").strip()
                short = name[3:]
                if short in h and short in CREDENTIAL_FIELDS:
                    # Two values: which one was meant is unknowable; decide on neither.
                    duplicate = duplicate or name
                limit = CONTEXT_LIMITS.get(short)
                if limit is not None and len(text) > limit:
                    text = text[:limit - len(TRUNCATED)] + TRUNCATED
                h[short] = text
            elif name == UNREADABLE_HEADER:
                unreadable = (raw or b"").decode("utf-8", "replace")
        token = h.get("token") or None
        return cls(
            request_id=(_usable_id(h.get("request-id"))
                        or _usable_id(key.decode("utf-8", "replace") if key else None)
                        or fallback_id),
            record_id=fallback_id,
            body=value or b"",
            endpoint=h.get("endpoint") if h.get("endpoint") in ENDPOINTS else None,
            token=secrets.to_digest(token) if token else None,
            jwt=h.get("jwt") or None,
            access_key=h.get("access-key") or None,
            timestamp=h.get("timestamp") or None,
            nonce=h.get("nonce") or None,
            signature=h.get("signature") or None,
            received_at=h.get("received-at") or None,
            origin=h.get("origin") or None,
            ip=h.get("ip") or None,
            user_agent=h.get("user-agent") or None,
            path=h.get("path") or None,
            query=h.get("query") or None,
            unreadable=unreadable,
            duplicate=duplicate,
        )

    def received_epoch(self) -> float | None:
        if not self.received_at:
            return None
        try:
            return datetime.fromisoformat(self.received_at.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None

    @property
    def context(self) -> dict[str, str | None]:
        return {"origin": self.origin, "ip": self.ip, "user_agent": self.user_agent,
                "path": self.path}


def _usable_id(candidate: str | None) -> str | None:
    """An id fit to key outputs and be quoted in logs: short, printable, whole UTF-8."""
    if (not candidate or len(candidate) > MAX_REQUEST_ID or "\ufffd" in candidate
            or not candidate.isprintable()):
        return None
    return candidate
