"""The key table (a Faust GlobalTable) and the decision state every worker keeps from it.

Faust calls `on_key_set` / `on_key_del` only on the worker that writes, before Kafka has
the change; it calls `on_changelog_event` on every worker, the writer included, for each
changelog record it reads, during recovery and after it (the global changelog stays
assigned and resumed everywhere: docs/architecture.md, "The key table"). So the decision
state is built from changelog events alone: every worker applies the same records in the
same order, and never a change that Kafka does not hold.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust

from workers.auth.state import AuthState
from workers.keys import records
from workers.keys.apply import apply

log = logging.getLogger(__name__)
NAME = "keys"


def changelog_topic(app_id: str) -> str:
    """Faust's name for the table's changelog; its assignor assumes this name, so the
    table cannot be given another (topics/eventguard-keys-changelog.yaml matches it)."""
    return f"{app_id}-{NAME}-changelog"


class KeyTable(faust.GlobalTable):
    """A GlobalTable whose writes hand back the changelog record's future."""

    _last_sent: Any = None

    def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
        """Faust's, keeping the changelog record's future for `write`.

        Not a bug: Faust's table writes do not return that future, and apply_config acks
        auth-config only once Kafka has the change. Upstream: none. Remove when a Faust
        table write returns the future of its changelog record."""
        self._last_sent = super().send_changelog(*args, **kwargs)
        return self._last_sent

    def write(self, key: bytes, value: bytes | None) -> Any:
        """Set `key`, or delete it when `value` is None; returns the changelog record's
        future, done once Kafka acknowledged it (or failed)."""
        if value is None:
            # Always a tombstone, in auth-config's order, even if this worker's copy no
            # longer holds the key: `del self[key]` would raise after sending it.
            self.on_key_del(key)
            self.data.pop(key, None)
        else:
            self[key] = value
        return self._last_sent


class KeyState:
    """The AuthState indexes the decision core reads, kept by the key table's changelog."""

    def __init__(self, state: AuthState) -> None:
        self.state = state
        # Set after the first recovery: the whole changelog has been applied.
        self.ready = asyncio.Event()
        self.applied_offset: int | None = None  # of the last changelog record (metrics)

    async def on_changelog_event(self, event: Any) -> None:
        message = event.message
        self.on_record(message.key, message.value)
        self.applied_offset = message.offset

    def on_record(self, key: bytes | None, value: bytes | None) -> None:
        record_key = (key or b"").decode("utf-8", "replace")
        try:
            apply(self.state, record_key, value)
        except records.InvalidRecord as exc:
            # apply_config validated it; only a record written by someone else gets here.
            log.warning("key table: skipped a record: %s", exc)

    async def on_recover(self) -> None:
        if not self.ready.is_set():
            log.info("key table: %d keys loaded", len(self.state.keys))
            self.ready.set()
