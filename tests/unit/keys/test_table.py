"""The decision state kept from the key table's changelog records (workers/keys/table.py)."""

import logging

import pytest

from workers.auth import secrets
from workers.auth.authorize import AuthState
from workers.auth.keys import KeyRecord, SecretRef
from workers.keys import records
from workers.keys.table import KeyState


def test_changelog_records_add_and_remove_keys_in_order() -> None:
    ks = KeyState(AuthState(), "app-keys-changelog")
    digest = secrets.digest("s3cret")
    key, value = records.encode_key(KeyRecord("k", server_secrets=(SecretRef(digest),)))
    ks.on_record(key, value)
    found = ks.state.keys.get("k")
    assert found is not None and found.server_secrets[0].digest == digest
    ks.on_record(key, None)
    assert ks.state.keys.get("k") is None


def test_a_record_that_does_not_apply_is_skipped_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    ks = KeyState(AuthState(), "app-keys-changelog")
    with caplog.at_level(logging.WARNING):
        ks.on_record(b"nonsense/x", b"{}")
    assert "key table: skipped a record: nonsense/x: unknown record key" in caplog.text
    assert len(ks.state.keys) == 0


def test_not_ready_and_not_current_before_the_reader_ran() -> None:
    ks = KeyState(AuthState(), "app-keys-changelog")
    assert not ks.ready.is_set()
    assert ks.follower.problem() == "loading the key table"
