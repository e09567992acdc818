"""This worker's key state: the key table's view, and the providers' JWKS keys."""

from __future__ import annotations

from workers.app import app, key_state
from workers.keys.jwks import JwksCache

# `view.state` is what every decision reads; `view.ready` is set once the key table
# has been recovered from its changelog (workers/keys/table.py).
view = key_state
jwks = JwksCache(view.state)


@app.task
async def run_jwks() -> None:
    await view.ready.wait()
    await jwks.run()
