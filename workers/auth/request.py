"""A raw-events record, read into the fields the decision core needs.

The record's headers are the contract with the ingest (and with any producer
that writes raw-events directly); see DESIGN.md, "raw-events record".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from workers.auth import secrets

ENDPOINTS = ("client", "s2s")


@dataclass(frozen=True, slots=True)
class RawRequest:
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

    @classmethod
    def from_record(
        cls,
        key: bytes | None,
        value: bytes | None,
        headers: Iterable[tuple[str, bytes | None]],
        fallback_id: str,
    ) -> RawRequest:
        h: dict[str, str] = {}
        for name, raw in headers:
            if raw is not None and name.startswith("eg-"):
                # Undecodable bytes cannot match anything; keep them visible, not fatal.
                h[name[3:]] = raw.decode("utf-8", "replace").strip()
        token = h.get("token") or None
        key_text = key.decode("utf-8", "replace") if key else ""
        return cls(
            request_id=h.get("request-id") or key_text or fallback_id,
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
