"""Runs this worker's KeyFollower, the one feed of its decision state (workers/keys/follower.py)."""

from __future__ import annotations

import logging

from workers.agents import outbox
from workers.app import app, bootstrap, key_state

log = logging.getLogger(__name__)


@app.task
async def follow_keys() -> None:
    try:
        await key_state.follower.run(bootstrap, outbox.die)
    except Exception as exc:
        # Without its reader the worker would decide with keys that no longer change.
        log.exception("key table: the reader failed")
        outbox.die(f"the key table reader failed ({type(exc).__name__})")
