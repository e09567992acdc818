"""The decision state kept from the key table's changelog events (workers/keys/table.py)."""

import asyncio
import logging
from types import SimpleNamespace

import pytest

from workers.auth import secrets
from workers.auth.authorize import AuthState
from workers.auth.keys import KeyRecord, SecretRef
from workers.keys import records
from workers.keys.table import KeyState


def event(key: bytes, value: bytes | None, offset: int = 0) -> SimpleNamespace:
    return SimpleNamespace(message=SimpleNamespace(key=key, value=value, offset=offset))


def test_changelog_events_add_and_remove_keys_in_order() -> None:
    ks = KeyState(AuthState())
    digest = secrets.digest("s3cret")
    key, value = records.encode_key(KeyRecord("k", server_secrets=(SecretRef(digest),)))
    assert ks.applied_offset is None
    asyncio.run(ks.on_changelog_event(event(key, value, offset=7)))
    found = ks.state.keys.get("k")
    assert found is not None and found.server_secrets[0].digest == digest
    asyncio.run(ks.on_changelog_event(event(key, None, offset=8)))
    assert ks.state.keys.get("k") is None
    assert ks.applied_offset == 8  # what /metrics measures the key table's lag from


def test_a_record_that_does_not_apply_is_skipped_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    ks = KeyState(AuthState())
    with caplog.at_level(logging.WARNING):
        asyncio.run(ks.on_changelog_event(event(b"nonsense/x", b"{}")))
    assert "key table: skipped a record: nonsense/x: unknown record key" in caplog.text
    assert len(ks.state.keys) == 0


def test_ready_once_the_table_was_recovered() -> None:
    ks = KeyState(AuthState())
    assert not ks.ready.is_set()
    asyncio.run(ks.on_recover())
    asyncio.run(ks.on_recover())  # every rebalance recovers again: still ready
    assert ks.ready.is_set()
