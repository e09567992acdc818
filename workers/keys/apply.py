"""Applying one auth-config record (or tombstone) to the decision core's state."""

from __future__ import annotations

from workers.auth.authorize import AuthState
from workers.auth.keys import KeyIndex, KeyRecord
from workers.keys import records


def apply(state: AuthState, record_key: str, value: bytes | None) -> None:
    """Raises records.InvalidRecord for a record that must not be applied."""
    if record_key.startswith(records.KEY_PREFIX):
        key_id = record_key[len(records.KEY_PREFIX):]
        if value is None:
            state.keys.remove(key_id)
        else:
            record = records.decode_key(record_key, records.loads(record_key, value))
            check_access_key(state.keys, record)
            state.keys.put(record)
    elif record_key.startswith(records.POLICY_PREFIX):
        name = record_key[len(records.POLICY_PREFIX):]
        if value is None:
            state.policies.pop(name, None)
        else:
            state.policies[name] = records.decode_policy(
                record_key, records.loads(record_key, value))
    elif record_key.startswith(records.PROVIDER_PREFIX):
        pid = record_key[len(records.PROVIDER_PREFIX):]
        state.verified.changed()
        if value is None:
            state.providers.pop(pid, None)
            state.jwks.pop(pid, None)
        else:
            provider = records.decode_provider(record_key, records.loads(record_key, value))
            old = state.providers.get(pid)
            if old is not None and old.jwks_url != provider.jwks_url:
                state.jwks.pop(pid, None)  # keys fetched from the old URL no longer apply
            state.providers[pid] = provider
    else:
        raise records.InvalidRecord(
            f"{record_key}: unknown record key; expected key/<id>, policy/<name> or provider/<id>")


def check_access_key(keys: KeyIndex, record: KeyRecord) -> None:
    """One access key names one key: the first key that took it keeps it.

    Every worker reads the same ordered log, so every worker refuses the same record.
    """
    owner = keys.by_access_key(record.access_key) if record.access_key else None
    if owner is not None and owner.id != record.id:
        raise records.InvalidRecord(
            f"{records.KEY_PREFIX}{record.id}: access_key {record.access_key} already belongs "
            f"to key {owner.id}; remove it there first")


def validate(record_key: str, value: bytes | None, keys: KeyIndex | None = None) -> None:
    """Check a record as `apply` would, against `keys`, without changing them."""
    apply(AuthState(), record_key, value)
    if keys is not None and value is not None and record_key.startswith(records.KEY_PREFIX):
        check_access_key(keys, records.decode_key(record_key, records.loads(record_key, value)))
