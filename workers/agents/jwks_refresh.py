"""Keeps the providers' JWKS keys fresh once the key table is loaded (workers/keys/jwks.py)."""

from __future__ import annotations

from workers.app import app, key_state
from workers.keys.jwks import JwksCache

jwks = JwksCache(key_state.state)


@app.task
async def run_jwks() -> None:
    await key_state.ready.wait()
    await jwks.run()
