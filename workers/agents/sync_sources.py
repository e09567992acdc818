"""Leader-only: publish what changed in the key sources to auth-config."""

from __future__ import annotations

import asyncio
import logging
import time

from workers.agents.key_view import view
from workers.app import app, auth_config, config
from workers.keys import records
from workers.keys.sources import ConfigSource
from workers.keys.sync import plan
from workers.keys.vault import Vault

log = logging.getLogger(__name__)


@app.task
async def sync_sources() -> None:
    vault = Vault()
    source = ConfigSource(config.path, vault.seal)
    await view.ready.wait()
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
    todo = plan(snapshot.source, snapshot.keys, view.state.keys.records(), snapshot.policies,
                view.state.policies, time.time(), vault.same, snapshot.providers,
                view.state.providers)
    if not todo:
        return
    for record in todo.upserts:
        key, value = records.encode_key(record)
        await auth_config.send(key=key, value=value)
    for key_id in todo.removals:
        await auth_config.send(key=records.key_record_key(key_id).encode(), value=None)
    for name, policy in todo.policy_upserts:
        key, value = records.encode_policy(name, policy)
        await auth_config.send(key=key, value=value)
    for name in todo.policy_removals:
        await auth_config.send(key=(records.POLICY_PREFIX + name).encode(), value=None)
    for provider in todo.provider_upserts:
        key, value = records.encode_provider(provider)
        await auth_config.send(key=key, value=value)
    for pid in todo.provider_removals:
        await auth_config.send(key=(records.PROVIDER_PREFIX + pid).encode(), value=None)
    log.info("key source %s: %d keys published, %d removed, %d policies and %d providers "
             "changed", snapshot.source, len(todo.upserts), len(todo.removals),
             len(todo.policy_upserts) + len(todo.policy_removals),
             len(todo.provider_upserts) + len(todo.provider_removals))
    await app.producer.flush()
