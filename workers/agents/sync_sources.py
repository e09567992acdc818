"""Leader-only: publish what changed in the key sources to auth-config."""

from __future__ import annotations

import asyncio
import logging
import time

from workers.app import app, auth_config, config, key_state
from workers.keys.sources import ConfigSource
from workers.keys.sync import mass_removal, plan
from workers.keys.vault import Vault

log = logging.getLogger(__name__)
_warned: dict[str, str] = {}  # source -> the mass removal last refused
_source: ConfigSource | None = None


def problem() -> str | None:
    """On the leader: why its key source never gave good keys (for /ready), else None."""
    if _source is None or not app.is_leader():
        return None
    return _source.problem


@app.task
async def sync_sources() -> None:
    vault = Vault()
    global _source
    source = _source = ConfigSource(config.path, vault.seal)
    await key_state.ready.wait()
    while True:
        if app.is_leader():
            await sync_once(source, vault)
            await asyncio.sleep(config.reload_sec)
        else:
            await asyncio.sleep(0.5)  # leadership settles after the first rebalance


async def sync_once(source: ConfigSource, vault: Vault) -> None:
    snapshot = await source.poll()
    if snapshot is None:
        return
    todo = plan(snapshot.source, snapshot.keys, key_state.state.keys.records(), snapshot.policies,
                key_state.state.policies, time.time(), vault.same, snapshot.providers,
                key_state.state.providers)
    if not todo:
        return
    mistake = None if snapshot.remove_many else mass_removal(
        todo, snapshot.source, key_state.state.keys.records())
    if mistake is not None:
        if mistake != _warned.get(snapshot.source):  # once per change of the file
            log.warning("%s", mistake)
            _warned[snapshot.source] = mistake
        return
    _warned.pop(snapshot.source, None)
    for key, value in todo.records():
        await auth_config.send(key=key, value=value)
    log.info("key source %s: %d keys published, %d removed, %d policies and %d providers "
             "changed", snapshot.source, len(todo.upserts), len(todo.removals),
             len(todo.policy_upserts) + len(todo.policy_removals),
             len(todo.provider_upserts) + len(todo.provider_removals))
    await app.producer.flush()
