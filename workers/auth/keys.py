"""Key records and the in-memory index the decision core looks keys up in.

Times are seconds since the epoch (floats); the caller hands in `now`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from workers.auth import secrets


class SecretKind(StrEnum):
    CLIENT = "client"  # browser key, /api/v1/event
    SERVER = "server"  # backend key, /api/v1/s2s/event


@dataclass(frozen=True, slots=True)
class SecretRef:
    """One bearer secret of a key, as its digest. Several overlap during rotation."""

    digest: str
    not_after: float | None = None

    def expired(self, now: float) -> bool:
        return self.not_after is not None and now >= self.not_after


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    client_secrets: tuple[SecretRef, ...] = ()
    server_secrets: tuple[SecretRef, ...] = ()
    origins: tuple[str, ...] = ()
    access_key: str | None = None
    access_secret: str | None = None  # "fernet:<token>", never plain text
    allowed_events: tuple[str, ...] = ()
    jwt_providers: tuple[str, ...] = ()
    policy: str | None = None
    disabled: bool = False
    expires_at: float | None = None
    source: str = "config"
    created_at: float | None = None
    rotated_at: float | None = None  # the last rotation (the console shows it)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def secrets_of(self, kind: SecretKind) -> tuple[SecretRef, ...]:
        return self.client_secrets if kind is SecretKind.CLIENT else self.server_secrets


@dataclass(frozen=True, slots=True)
class SecretMatch:
    key: KeyRecord
    kind: SecretKind
    secret: SecretRef


@dataclass
class KeyIndex:
    """Every key, indexed by id and by secret digest. Mutated as key table records arrive."""

    _by_id: dict[str, KeyRecord] = field(default_factory=dict)
    # One digest may belong to several (key, kind) pairs: a key whose client and
    # server secret are the same (Jitsu's single-secret keys), or two keys that
    # share a secret. Removing one must not unindex the other.
    _by_digest: dict[str, set[tuple[str, SecretKind]]] = field(default_factory=dict)
    _by_access_key: dict[str, str] = field(default_factory=dict)
    # match_secret's answers for known digests, by (digest, prefer); emptied on every change.
    _matches: dict[tuple[str, SecretKind | None], SecretMatch | None] = field(
        default_factory=dict, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self._by_id)

    def records(self) -> list[KeyRecord]:
        return list(self._by_id.values())

    def get(self, key_id: str) -> KeyRecord | None:
        return self._by_id.get(key_id)

    def put(self, record: KeyRecord) -> None:
        self.remove(record.id)
        self._matches.clear()
        self._by_id[record.id] = record
        if record.access_key:
            self._by_access_key[record.access_key] = record.id
        for kind in SecretKind:
            for ref in record.secrets_of(kind):
                self._by_digest.setdefault(ref.digest, set()).add((record.id, kind))

    def remove(self, key_id: str) -> None:
        old = self._by_id.pop(key_id, None)
        if old is None:
            return
        self._matches.clear()
        if old.access_key and self._by_access_key.get(old.access_key) == key_id:
            del self._by_access_key[old.access_key]
        for kind in SecretKind:
            for ref in old.secrets_of(kind):
                owners = self._by_digest.get(ref.digest, set())
                owners.discard((key_id, kind))
                if not owners:
                    self._by_digest.pop(ref.digest, None)

    def by_access_key(self, access_key: str) -> KeyRecord | None:
        key_id = self._by_access_key.get(access_key)
        return self._by_id.get(key_id) if key_id is not None else None

    def match_secret(self, token_digest: str, prefer: SecretKind | None = None
                     ) -> SecretMatch | None:
        """The key holding this secret; of several, one of kind `prefer`, then by id."""
        owners = self._by_digest.get(token_digest)
        if not owners:
            return None
        # Only digests that some key holds are remembered: bounded by the keys' secrets.
        try:
            return self._matches[token_digest, prefer]
        except KeyError:
            found = self._matches[token_digest, prefer] = self._match(
                owners, token_digest, prefer)
            return found

    def _match(self, owners: set[tuple[str, SecretKind]], token_digest: str,
               prefer: SecretKind | None) -> SecretMatch | None:
        for key_id, kind in sorted(owners, key=lambda o: (o[1] is not prefer, o[0], o[1])):
            record = self._by_id[key_id]
            for ref in record.secrets_of(kind):
                if secrets.same(ref.digest, token_digest):
                    return SecretMatch(record, kind, ref)
        return None
