"""auth-config -> auth-state: validate each record, refuse plaintext secrets.

auth-state is the key table's changelog, written here in auth-config's order;
every worker reads it whole (workers/keys/view.py). Faust commits the
auth-config offset only after the producer flushed, so a crash re-applies a
record (idempotent) and never skips one.
"""

from __future__ import annotations

import logging
from typing import Any

from workers.agents.key_view import view
from workers.app import app, auth_config, auth_state
from workers.keys import records
from workers.keys.apply import validate

log = logging.getLogger(__name__)


@app.agent(auth_config)
async def apply_config(stream: Any) -> None:
    async for event in stream.events():
        key: bytes = event.message.key or b""
        value: bytes | None = event.message.value
        try:
            validate(key.decode("utf-8", "replace"), value, view.state.keys)
        except records.InvalidRecord as exc:
            # The message names the record key and field, never the secret.
            log.error("auth-config: refused %s", exc)
            continue
        # Through Faust's topic send, not app.producer.send: with the latter, the
        # worker holding auth-config stopped processing every partition after a
        # rebalance (reproduced by `eventguard bench propagation`).
        await auth_state.send(key=key, value=value)
