"""The key table (a Faust GlobalTable) and the decision state every worker keeps from it.

`apply_config` writes the table; Faust's consumer is not trusted to read it back, since it
can drop changelog records for good (workers/keys/follower.py). Each worker builds its
decision state from its own KeyFollower instead: the same records in the same order on
every worker, never a change that Kafka does not hold, and never one skipped.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust

from workers.auth.state import AuthState
from workers.keys import records
from workers.keys.apply import apply
from workers.keys.follower import KeyFollower

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
    """The AuthState indexes the decision core reads, fed by this worker's KeyFollower."""

    def __init__(self, state: AuthState, topic: str) -> None:
        self.state = state
        self.follower = KeyFollower(topic, self.on_record, lambda: len(state.keys))

    @property
    def ready(self) -> asyncio.Event:
        """Set once the whole changelog, up to an end offset the broker reported, is applied."""
        return self.follower.ready

    async def current(self) -> None:
        """Return once the keys are current: decisions never use keys known to be old.
        Judged now, from the clock: the `current` event is only as fresh as the reader's
        last turn on a busy event loop."""
        while self.follower.problem() is not None:
            self.follower.current.clear()
            await self.follower.current.wait()

    def on_record(self, key: bytes | None, value: bytes | None) -> None:
        record_key = (key or b"").decode("utf-8", "replace")
        try:
            apply(self.state, record_key, value)
        except records.InvalidRecord as exc:
            # apply_config validated it; only a record written by someone else gets here.
            log.warning("key table: skipped a record: %s", exc)
