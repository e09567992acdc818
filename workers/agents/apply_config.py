"""auth-config -> the key table: validate each record, refuse plaintext secrets.

Records are written to the table in auth-config's order; every worker applies them from
the table's changelog (workers/keys/table.py). An auth-config record is acked only
once Kafka acknowledged its changelog record, so its offset is never committed past a
change that could still be lost: a crash re-applies a record (idempotent), never skips
one. Faust's own commit-time flush gives up on its send buffer after 0.1 s, and a
changelog send that fails is only logged by Faust.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from workers.agents import outbox
from workers.app import app, auth_config, key_state, keys
from workers.keys import records
from workers.keys.apply import validate

log = logging.getLogger(__name__)


@app.agent(auth_config)
async def apply_config(stream: Any) -> None:
    async for event in stream.noack().events():
        key: bytes = event.message.key or b""
        value: bytes | None = event.message.value
        try:
            validate(key.decode("utf-8", "replace"), value, key_state.state.keys)
        except records.InvalidRecord as exc:
            # The message names the record key and field, never the secret.
            log.error("auth-config: refused %s", exc)
            event.ack()
            continue
        keys.write(key, value).add_done_callback(partial(_written, event))


def _written(event: Any, sent: Any) -> None:
    if sent.cancelled():
        return  # the producer is stopping: the record is not acked, so it is read again
    if sent.exception() is not None:
        # Not acked, this record would hold back every later commit of auth-config.
        outbox.die(f"a key table change was not delivered ({type(sent.exception()).__name__})")
    else:
        event.ack()
