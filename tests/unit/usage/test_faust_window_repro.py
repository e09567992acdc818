"""Reproduction: Faust's windowed table never expires windows it did not write itself.

faust-streaming 0.15.3, in-memory store: `Collection._del_old_keys` expires the windows
listed in `_partition_timestamps`, which only `on_key_set` (a write by this worker) fills.
Windows applied from the changelog (recovery after a rebalance, or a standby replica)
go through `Store.apply_changelog_batch`, which does not list them, so they stay in
memory until the process ends. workers/usage_agents/counts.py drops them with its own timer
(`forget_old_windows`).

Skipped by default (it documents Faust, not eventguard):
EVENTGUARD_FAUST_REPRO=1 pytest tests/unit/usage/test_faust_window_repro.py
"""

from __future__ import annotations

import asyncio
import os
import time
from types import SimpleNamespace
from typing import Any

import faust
import pytest


@pytest.mark.skipif(not os.environ.get("EVENTGUARD_FAUST_REPRO"),
                    reason="set EVENTGUARD_FAUST_REPRO=1 to reproduce Faust's behaviour")
def test_recovered_windows_are_never_expired() -> None:
    app = faust.App("repro-windows", broker="kafka://127.0.0.1:1", store="memory://")
    table: Any = app.Table("counts", default=int, partitions=1).tumbling(60, expires=3600).table
    long_ago = time.time() - 10 * 3600  # ten hours: far past the hour windows are kept
    window = table.window.current(long_ago)
    key = ["shop", list(window)]  # a windowed key as JSON has it in the changelog
    event = SimpleNamespace(key=key, value=5, message=SimpleNamespace(value=b"5", partition=0))

    table.apply_changelog_batch([event])  # what recovery and standby replicas do
    asyncio.run(table._del_old_keys())  # what Faust's cleanup timer runs

    assert table.data.get(("shop", tuple(window))) == 5, "Faust expired it: fixed upstream?"
    assert not table._partition_timestamps  # never scheduled for expiry
