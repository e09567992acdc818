"""auth-config -> auth-state table: validate each record, refuse plaintext secrets."""

from __future__ import annotations

import logging
from typing import Any

from workers.app import app, auth_config, auth_state
from workers.keys import records
from workers.keys.apply import validate

log = logging.getLogger(__name__)


@app.agent(auth_config)
async def apply_config(stream: Any) -> None:
    async for event in stream.events():
        key: bytes = event.message.key or b""
        value: bytes | None = event.message.value
        record_key = key.decode("utf-8", "replace")
        try:
            validate(record_key, value)
        except records.InvalidRecord as exc:
            # The message names the record key and field, never the secret.
            log.error("auth-config: refused %s", exc)
            continue
        if value is None:
            auth_state.pop(key, None)
        else:
            auth_state[key] = value
