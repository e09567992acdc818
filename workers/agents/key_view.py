"""This worker's instance of the key view, run as a Faust task."""

from __future__ import annotations

from workers.app import _bootstrap, app, config
from workers.auth.authorize import AuthState
from workers.keys.view import KeyView

view = KeyView(config.topic("auth-state"), AuthState(max_body_bytes=config.max_body_bytes))


@app.task
async def run_key_view() -> None:
    await view.run(_bootstrap)
