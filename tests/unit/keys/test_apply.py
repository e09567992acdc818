"""Applying auth-config records: one access key names one key (issue 8)."""

import pytest

from workers.auth.authorize import AuthState
from workers.auth.keys import KeyRecord
from workers.keys import records
from workers.keys.apply import apply, validate


def put(state: AuthState, key_id: str, access_key: str) -> None:
    key, value = records.encode_key(KeyRecord(id=key_id, access_key=access_key,
                                              access_secret="fernet:x"))
    apply(state, key.decode(), value)


def test_a_second_key_with_the_same_access_key_is_refused() -> None:
    state = AuthState()
    put(state, "a", "AK1")
    with pytest.raises(records.InvalidRecord, match="access_key AK1 already belongs to key a"):
        put(state, "b", "AK1")
    owner = state.keys.by_access_key("AK1")
    assert owner is not None and owner.id == "a" and state.keys.get("b") is None


def test_the_same_key_may_keep_or_change_its_access_key() -> None:
    state = AuthState()
    put(state, "a", "AK1")
    put(state, "a", "AK1")
    put(state, "a", "AK2")
    put(state, "b", "AK1")  # free again once `a` moved on
    owner = state.keys.by_access_key("AK1")
    assert owner is not None and owner.id == "b"


def test_validate_checks_against_the_current_keys() -> None:
    state = AuthState()
    put(state, "a", "AK1")
    key, value = records.encode_key(KeyRecord(id="b", access_key="AK1", access_secret="fernet:x"))
    validate(key.decode(), value)  # alone, the record is well formed
    with pytest.raises(records.InvalidRecord, match="already belongs"):
        validate(key.decode(), value, state.keys)
    validate("key/b", None, state.keys)  # a tombstone is always fine
