"""The auth-config record format: record keys, JSON values, validation.

Any producer may publish these (see docs/auth-config.md), so decoding trusts
nothing: a record with a plaintext secret is refused with an error that names
the record key and the field, never the secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from workers import typos
from workers.auth import origins, secrets
from workers.auth.keys import KeyRecord, SecretRef
from workers.auth.policy import EventPolicy
from workers.auth.providers import Provider, ProviderError, provider_from_record

KEY_PREFIX = "key/"
POLICY_PREFIX = "policy/"
PROVIDER_PREFIX = "provider/"
FERNET_PREFIX = "fernet:"


class InvalidRecord(ValueError):
    """An auth-config record that cannot be applied. The message is safe to log."""


class PlaintextSecret(InvalidRecord):
    """A secret field holds something other than a digest or encrypted token."""


Pair = tuple[bytes, bytes | None]  # (record key, JSON value or None for a tombstone)


def key_record_key(key_id: str) -> str:
    return KEY_PREFIX + key_id


def key_changes(upserts: Iterable[KeyRecord], removals: Iterable[str]) -> list[Pair]:
    """The auth-config records for these key upserts and removals, in that order."""
    return [*(encode_key(r) for r in upserts),
            *((key_record_key(k).encode(), None) for k in removals)]


def encode_key(record: KeyRecord) -> tuple[bytes, bytes]:
    value: dict[str, Any] = {
        "id": record.id,
        "client_secrets": [_secret_json(s) for s in record.client_secrets],
        "server_secrets": [_secret_json(s) for s in record.server_secrets],
        "origins": list(record.origins),
        "access_key": record.access_key,
        "access_secret": record.access_secret,
        "allowed_events": list(record.allowed_events),
        "jwt_providers": list(record.jwt_providers),
        "policy": record.policy,
        "disabled": record.disabled,
        "expires_at": to_rfc3339(record.expires_at),
        "source": record.source,
        "created_at": to_rfc3339(record.created_at),
    }
    if record.rotated_at is not None:
        value["rotated_at"] = to_rfc3339(record.rotated_at)
    return key_record_key(record.id).encode(), orjson.dumps(value)




def from_config(source: str | None) -> bool:
    """Whether the config file owns a record of this source: only it changes or removes
    the record. Providers and policies the config publishes carry no source; any other
    publisher (the console, `eventguard keys`, kcat) names itself, and a reload leaves its
    records alone."""
    return source is None or source == "config"


# Every field of a key record on auth-config (encode_key writes all but the singular
# secrets, which other publishers may use).
RECORD_FIELDS = frozenset({
    "id", "client_secret", "client_secrets", "server_secret", "server_secrets", "origins",
    "access_key", "access_secret", "allowed_events", "jwt_providers", "policy", "disabled",
    "expires_at", "source", "created_at", "rotated_at"})
DIGEST_FIELDS = frozenset({"digest", "not_after"})


def decode_key(record_key: str, value: Mapping[str, Any]) -> KeyRecord:
    typo = typos.unknown_field(value, RECORD_FIELDS)
    if typo is not None:
        raise InvalidRecord(f"{record_key}: {typo}")
    key_id = value.get("id", record_key[len(KEY_PREFIX):])
    if not isinstance(key_id, str) or not key_id or record_key != KEY_PREFIX + key_id:
        raise InvalidRecord(f"{record_key}: `id` must be a string equal to the record key's id")
    access_secret = value.get("access_secret")
    if access_secret is not None and (
        not isinstance(access_secret, str) or not access_secret.startswith(FERNET_PREFIX)
    ):
        raise PlaintextSecret(f"{record_key}: access_secret must be 'fernet:<token>'")
    return KeyRecord(
        id=key_id,
        client_secrets=_secret_refs(record_key, value, "client"),
        server_secrets=_secret_refs(record_key, value, "server"),
        origins=origin_patterns(record_key, _strings(record_key, value, "origins")),
        access_key=_opt_str(record_key, value, "access_key"),
        access_secret=access_secret,
        allowed_events=_strings(record_key, value, "allowed_events"),
        jwt_providers=_strings(record_key, value, "jwt_providers"),
        policy=_opt_str(record_key, value, "policy"),
        disabled=to_bool(record_key, "disabled", value.get("disabled")),
        expires_at=from_time(record_key, value.get("expires_at")),
        source=str(value.get("source") or "unknown"),
        created_at=from_time(record_key, value.get("created_at")),
        rotated_at=from_time(record_key, value.get("rotated_at")),
    )


def decode_provider(record_key: str, value: Mapping[str, Any]) -> Provider:
    try:
        provider = provider_from_record(record_key, value)
    except ProviderError as exc:
        raise InvalidRecord(str(exc)) from None
    if record_key != PROVIDER_PREFIX + provider.id:
        raise InvalidRecord(f"{record_key}: `id` must equal the record key's id")
    return provider


def encode_provider(provider: Provider) -> tuple[bytes, bytes]:
    return (PROVIDER_PREFIX + provider.id).encode(), provider.record


def encode_policy(name: str, policy: EventPolicy) -> tuple[bytes, bytes]:
    value: dict[str, Any] = {
        "anonymous_events": list(policy.anonymous_events),
        "modify_without_jwt": list(policy.modify_without_jwt),
        "modify_with_jwt": list(policy.modify_with_jwt),
    }
    if policy.source:
        value["source"] = policy.source
    return (POLICY_PREFIX + name).encode(), orjson.dumps(value)


def decode_policy(record_key: str, value: Mapping[str, Any]) -> EventPolicy:
    defaults = EventPolicy()
    return EventPolicy(
        anonymous_events=_strings(record_key, value, "anonymous_events"),
        modify_without_jwt=_strings(record_key, value, "modify_without_jwt",
                                    defaults.modify_without_jwt),
        modify_with_jwt=_strings(record_key, value, "modify_with_jwt", defaults.modify_with_jwt),
        source=_opt_str(record_key, value, "source"),
    )


def loads(record_key: str, raw: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRecord(f"{record_key}: value is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidRecord(f"{record_key}: value must be a JSON object")
    return value


def to_rfc3339(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def to_bool(record_key: str, field: str, value: Any) -> bool:
    """A JSON boolean; absent is false. `"false"` must not disable a key by being truthy."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidRecord(f"{record_key}: {field} must be true or false, not {value!r}")
    return value


def from_time(record_key: str, value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidRecord(f"{record_key}: a time must be RFC 3339 or epoch seconds")
    if isinstance(value, int | float):
        return round(float(value), 3)  # records carry milliseconds
    if isinstance(value, datetime):  # YAML parses bare timestamps itself
        return round((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp(), 3)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidRecord(f"{record_key}: {value!r} is not an RFC 3339 time") from None
        return round((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp(), 3)
    raise InvalidRecord(f"{record_key}: a time must be RFC 3339 or epoch seconds")


def _secret_json(ref: SecretRef) -> dict[str, Any]:
    return {"digest": ref.digest, "not_after": to_rfc3339(ref.not_after)}


def _secret_refs(record_key: str, value: Mapping[str, Any], kind: str) -> tuple[SecretRef, ...]:
    refs: list[SecretRef] = []
    single = value.get(f"{kind}_secret")
    items: Iterable[Any] = value.get(f"{kind}_secrets") or []
    if single:
        items = [single, *items]
    if not isinstance(items, list | tuple):
        raise InvalidRecord(f"{record_key}: {kind}_secrets must be a list")
    for item in items:
        typo = typos.unknown_field(item, DIGEST_FIELDS) if isinstance(item, dict) else None
        if typo is not None:
            raise InvalidRecord(f"{record_key}: {kind}_secrets: {typo}")
        digest, not_after = (item, None) if isinstance(item, str) else (
            (item.get("digest"), item.get("not_after")) if isinstance(item, dict) else (None, None))
        if not isinstance(digest, str) or not secrets.is_digest(digest):
            raise PlaintextSecret(
                f"{record_key}: {kind} secrets must be 'sha256:<64 hex>' digests; "
                "publish the digest, never the secret")
        refs.append(SecretRef(digest, from_time(record_key, not_after)))
    return tuple(refs)


def _strings(
    record_key: str, value: Mapping[str, Any], field: str, default: tuple[str, ...] = ()
) -> tuple[str, ...]:
    items = value.get(field)
    if items is None:
        return default
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise InvalidRecord(f"{record_key}: {field} must be a list of strings")
    return tuple(items)


def origin_patterns(where: str, patterns: Iterable[str]) -> tuple[str, ...]:
    """`patterns`, once each is one that can match an Origin (workers/auth/origins.py)."""
    kept = tuple(patterns)
    try:
        origins.check_patterns(kept)
    except origins.Malformed as exc:
        raise InvalidRecord(f"{where}: {exc}") from None
    return kept


def _opt_str(record_key: str, value: Mapping[str, Any], field: str) -> str | None:
    item = value.get(field)
    if item is None or item == "":
        return None
    if not isinstance(item, str):
        raise InvalidRecord(f"{record_key}: {field} must be a string")
    return item
