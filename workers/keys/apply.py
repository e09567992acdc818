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


def validate(record_key: str, value: bytes | None) -> None:
    """Check a record as `apply` would, without a state to change."""
    apply(AuthState(), record_key, value)
