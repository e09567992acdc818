"""Console sessions: created at sign-in, ended by sign-out or inactivity. Pure: the clock
is handed in.

The cookie holds a random session id; this process keeps only its SHA-256 digest, so a
memory dump or a log line of the table holds no usable cookie. Each session has its own
CSRF token, which every form and state-changing request sends back. Sessions live in
the ingest process that serves the admin listener: a restart signs everyone out.
"""

from __future__ import annotations

import secrets as random
from dataclasses import dataclass, field

from workers.auth import secrets

MAX_SESSIONS = 1000  # the oldest goes first: signing in many times cannot grow memory


@dataclass
class Session:
    csrf: str
    seen: float
    # One-time things for the next page: a message, and new secrets (shown once).
    flash: list[tuple[str, str]] = field(default_factory=list)  # (level, text)
    shown: dict[str, dict[str, str]] = field(default_factory=dict)  # key id -> secrets


class Sessions:
    def __init__(self, idle_s: float, max_sessions: int = MAX_SESSIONS) -> None:
        self.idle_s = idle_s
        self.max_sessions = max_sessions
        self._by_digest: dict[str, Session] = {}

    def start(self, now: float) -> tuple[str, Session]:
        """A new session: (the cookie value, the session)."""
        self._forget_idle(now)
        while len(self._by_digest) >= self.max_sessions:
            oldest = min(self._by_digest, key=lambda d: self._by_digest[d].seen)
            del self._by_digest[oldest]
        cookie = random.token_urlsafe(32)
        session = Session(csrf=random.token_urlsafe(32), seen=now)
        self._by_digest[secrets.digest(cookie)] = session
        return cookie, session

    def get(self, cookie: str | None, now: float) -> Session | None:
        """The live session of this cookie (its inactivity clock restarts), or None."""
        if not cookie:
            return None
        digest = secrets.digest(cookie)
        session = self._by_digest.get(digest)
        if session is None:
            return None
        if now - session.seen > self.idle_s:
            del self._by_digest[digest]
            return None
        session.seen = now
        return session

    def end(self, cookie: str | None) -> None:
        if cookie:
            self._by_digest.pop(secrets.digest(cookie), None)

    def __len__(self) -> int:
        return len(self._by_digest)

    def _forget_idle(self, now: float) -> None:
        for digest in [d for d, s in self._by_digest.items() if now - s.seen > self.idle_s]:
            del self._by_digest[digest]


def csrf_ok(session: Session, sent: str | None) -> bool:
    """Whether a request carries this session's CSRF token (compared in constant time)."""
    return bool(sent) and secrets.same(secrets.digest(sent or ""),
                                       secrets.digest(session.csrf))
