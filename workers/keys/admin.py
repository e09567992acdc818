"""Key operations of `eventguard keys` and the admin HTTP API: pure.

Each operation reads the current keys and returns a Change to publish to
auth-config. New plaintext secrets appear only in `Change.shown`, to be shown
once to the operator who asked for them; records hold digests and sealed
access secrets. Keys owned by a key source (the config file) are changed in
that source, never here, or the next sync would undo the change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from workers.auth import secrets
from workers.auth.keys import KeyIndex, KeyRecord, SecretKind, SecretRef
from workers.auth.policy import EventPolicy
from workers.auth.reasons import Reason
from workers.keys import records
from workers.keys.records import InvalidRecord, origin_patterns, to_rfc3339
from workers.keys.sources import CONFIG_SOURCE

DEFAULT_OVERLAP_S = 24 * 3600.0


class KeyOpError(ValueError):
    """An operation that cannot be done. `status` is its HTTP status."""

    status = 400


class NoSuchKey(KeyOpError):
    status = 404


class Conflict(KeyOpError):
    status = 409


@dataclass(frozen=True)
class Change:
    upserts: tuple[KeyRecord, ...] = ()
    removals: tuple[str, ...] = ()
    shown: dict[str, str] = field(default_factory=dict)  # label -> new plaintext secret
    message: str = ""
    # Provider and policy records: (record key, value or None for a tombstone)
    others: tuple[tuple[bytes, bytes | None], ...] = ()

    def records(self) -> list[tuple[bytes, bytes | None]]:
        """What to write to auth-config, in order."""
        return [*records.key_changes(self.upserts, self.removals), *self.others]


def add(
    keys: KeyIndex, key_id: str, *, now: float, seal: Callable[[str], str], source: str,
    client: bool = False, server: bool = False, access: bool = False,
    origins: Iterable[str] = (), allowed_events: Iterable[str] = (),
    jwt_providers: Iterable[str] = (), policy: str | None = None,
) -> Change:
    key_id = key_id.strip()
    if not key_id or "/" in key_id:
        raise KeyOpError("a key id must be non-empty and without '/'")
    if keys.get(key_id) is not None:
        raise Conflict(f"key {key_id} exists; rotate it, or revoke it first")
    if not (client or server or access):
        raise KeyOpError("say which secrets the key gets: client, server and/or access")
    shown: dict[str, str] = {}
    try:
        patterns = origin_patterns(f"key {key_id}", origins)
    except InvalidRecord as exc:
        raise KeyOpError(str(exc)) from None
    record = KeyRecord(
        id=key_id, origins=patterns, allowed_events=tuple(allowed_events),
        jwt_providers=tuple(jwt_providers), policy=policy, source=source,
        created_at=round(now, 3),
    )
    for kind, wanted in ((SecretKind.CLIENT, client), (SecretKind.SERVER, server)):
        if wanted:
            record = _with_secret(record, kind, _new_secret(kind, shown), ())
    if access:
        record = _with_access(record, seal, shown)
    return Change((record,), shown=shown, message=f"added key {key_id}")


def rotate(
    keys: KeyIndex, key_id: str, kind: str, *, now: float, seal: Callable[[str], str],
    overlap_s: float = DEFAULT_OVERLAP_S,
) -> Change:
    """A new secret of `kind`; the current ones keep working for `overlap_s` seconds."""
    record = _owned(keys, key_id)
    shown: dict[str, str] = {}
    if kind == "access":
        record = replace(record, rotated_at=round(now, 3))
        return Change((_with_access(record, seal, shown),), shown=shown,
                      message=f"key {key_id}: new access key and secret; the old ones stop now")
    try:
        skind = SecretKind(kind)
    except ValueError:
        raise KeyOpError(f"kind must be client, server or access, not {kind!r}") from None
    until = round(now + max(0.0, overlap_s), 3)
    kept = tuple(
        replace(ref, not_after=min(until, ref.not_after or until))
        for ref in record.secrets_of(skind) if not ref.expired(now)
    )
    if not record.secrets_of(skind):
        # Rotating adds a secret: on a key without one it would widen what the key does.
        raise KeyOpError(f"key {key_id} has no {kind} secret to rotate; to give it one, "
                         f"revoke it and add it again with --{kind}")
    updated = _with_secret(replace(record, rotated_at=round(now, 3)), skind,
                           _new_secret(skind, shown), kept)
    return Change((updated,), shown=shown,
                  message=f"key {key_id}: new {kind} secret; "
                          f"the previous ones stop at {to_rfc3339(until)}")


def revoke(keys: KeyIndex, key_id: str) -> Change:
    _owned(keys, key_id)
    return Change(removals=(key_id,), message=f"revoked key {key_id}")


def set_disabled(keys: KeyIndex, key_id: str, disabled: bool) -> Change:
    record = _owned(keys, key_id)
    verb = "disabled" if disabled else "enabled"
    return Change((replace(record, disabled=disabled),), message=f"{verb} key {key_id}")


def edit(keys: KeyIndex, key_id: str, *, origins: Iterable[str],
         allowed_events: Iterable[str]) -> Change:
    """New origins and allowed events for an operator's key (empty: any)."""
    record = _owned(keys, key_id)
    try:
        patterns = origin_patterns(f"key {key_id}", [o.strip() for o in origins if o.strip()])
    except InvalidRecord as exc:
        raise KeyOpError(str(exc)) from None
    events = tuple(e.strip() for e in allowed_events if e.strip())
    return Change((replace(record, origins=patterns, allowed_events=events),),
                  message=f"key {key_id}: origins and allowed events saved")


def set_policy(policies: Mapping[str, EventPolicy], name: str, *, anonymous_events: Iterable[str],
               modify_without_jwt: Iterable[str], modify_with_jwt: Iterable[str],
               source: str) -> Change:
    """Save the three event lists of policy `name`; one from the config is changed there."""
    name = name.strip()
    if not name or "/" in name:
        raise KeyOpError("a policy name must be non-empty and without '/'")
    current = policies.get(name)
    if current is not None and records.from_config(current.source):
        raise Conflict(f"policy {name} comes from the config file; change it there")

    def clean(items: Iterable[str]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(i.strip() for i in items if i.strip()))

    policy = EventPolicy(clean(anonymous_events), clean(modify_without_jwt),
                         clean(modify_with_jwt), source=source)
    return Change(others=(records.encode_policy(name, policy),),
                  message=f"policy {name} saved")


def check(keys: KeyIndex, key_id: str, secret: str, now: float) -> tuple[Reason, str]:
    """Whether `secret` is valid for key `key_id` right now, as the worker would say."""
    record = keys.get(key_id)
    if record is None:
        return Reason.UNKNOWN_KEY, f"no key {key_id}"
    digest = secrets.digest(secret.strip())
    for kind in SecretKind:
        for ref in record.secrets_of(kind):
            if not secrets.same(ref.digest, digest):
                continue
            if record.disabled:
                return Reason.KEY_DISABLED, "the key is disabled"
            if record.expired(now):
                return Reason.KEY_EXPIRED, "the key is past expires_at"
            if ref.expired(now):
                return Reason.KEY_EXPIRED, "this secret is past its not_after"
            return Reason.OK, f"valid {kind.value} secret of key {key_id}"
    return Reason.UNKNOWN_KEY, f"not a secret of key {key_id}"


def describe(record: KeyRecord) -> dict[str, Any]:
    """What `list` and `show` print: never a secret, only a digest's first characters."""
    def refs(kind: SecretKind) -> list[dict[str, Any]]:
        return [{"digest": ref.digest[:19] + "…", "not_after": to_rfc3339(ref.not_after)}
                for ref in record.secrets_of(kind)]
    kinds = [k.value for k in SecretKind if record.secrets_of(k)]
    if record.access_key:
        kinds.append("access")
    return {
        "id": record.id, "secrets": kinds, "client_secrets": refs(SecretKind.CLIENT),
        "server_secrets": refs(SecretKind.SERVER), "access_key": record.access_key,
        "origins": list(record.origins), "allowed_events": list(record.allowed_events),
        "jwt_providers": list(record.jwt_providers), "policy": record.policy,
        "disabled": record.disabled, "expires_at": to_rfc3339(record.expires_at),
        "created_at": to_rfc3339(record.created_at), "source": record.source,
        "rotated_at": to_rfc3339(record.rotated_at),
    }


def _owned(keys: KeyIndex, key_id: str) -> KeyRecord:
    record = keys.get(key_id)
    if record is None:
        raise NoSuchKey(f"no key {key_id}")
    if record.source == CONFIG_SOURCE:
        raise Conflict(f"key {key_id} comes from the config file; change it there")
    return record


def _new_secret(kind: SecretKind, shown: dict[str, str]) -> str:
    value = secrets.generate()
    shown[f"{kind.value}_secret"] = value
    return value


def _with_secret(record: KeyRecord, kind: SecretKind, secret: str,
                 kept: tuple[SecretRef, ...]) -> KeyRecord:
    refs = (*kept, SecretRef(secrets.digest(secret)))
    if kind is SecretKind.CLIENT:
        return replace(record, client_secrets=refs)
    return replace(record, server_secrets=refs)


def _with_access(record: KeyRecord, seal: Callable[[str], str],
                 shown: dict[str, str]) -> KeyRecord:
    access_key = "ak_" + secrets.generate()[:20]
    access_secret = secrets.generate()
    shown["access_key"] = access_key
    shown["access_secret"] = access_secret
    return replace(record, access_key=access_key, access_secret=seal(access_secret))
