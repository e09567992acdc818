"""Applying one auth-config record (or tombstone) to the decision core's state."""

from __future__ import annotations

from workers.auth.authorize import AuthState
from workers.keys import records


def apply(state: AuthState, record_key: str, value: bytes | None) -> None:
    """Raises records.InvalidRecord for a record that must not be applied."""
    if record_key.startswith(records.KEY_PREFIX):
        key_id = record_key[len(records.KEY_PREFIX):]
        if value is None:
            state.keys.remove(key_id)
        else:
            state.keys.put(records.decode_key(record_key, records.loads(record_key, value)))
    elif record_key.startswith(records.POLICY_PREFIX):
        name = record_key[len(records.POLICY_PREFIX):]
        if value is None:
            state.policies.pop(name, None)
        else:
            state.policies[name] = records.decode_policy(
                record_key, records.loads(record_key, value))
    elif record_key.startswith(records.PROVIDER_PREFIX):
        return  # JWT providers are not wired in yet; kept in the table for later.
    else:
        raise records.InvalidRecord(
            f"{record_key}: unknown record key; expected key/<id>, policy/<name> or provider/<id>")


def validate(record_key: str, value: bytes | None) -> None:
    """Check a record as `apply` would, without a state to change."""
    apply(AuthState(), record_key, value)
