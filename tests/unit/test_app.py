"""The Faust app is configured for at-least-once with few re-decisions (issue 8)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def app_module() -> ModuleType:
    # Building the app needs an address, not a broker: nothing connects here.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
        return importlib.import_module("workers.app")


def test_the_consumer_commits_before_a_rebalance(app_module: ModuleType) -> None:
    from workers.kafka.commit_before_revoke import CommitBeforeRevoke
    from workers.kafka.eager_drain import EagerDrain

    assert type(app_module.app.consumer) is EagerDrain
    assert isinstance(app_module.app.consumer, CommitBeforeRevoke)


def test_commit_and_session_settings(app_module: ModuleType) -> None:
    conf = app_module.app.conf
    assert conf.broker_commit_interval == 0.5 and conf.broker_commit_every == 1000
    assert conf.broker_session_timeout == 10.0 and conf.broker_heartbeat_interval == 1.0


def test_a_bare_faust_worker_without_an_address_says_how_to_give_one(tmp_path: Path) -> None:
    """The worker runs on any Kafka and does not look for the embedded broker itself."""
    config = tmp_path / "eventguard.yaml"
    config.write_text("api_keys: []\n")
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "", "EVENTGUARD_CONFIG": str(config)}
    done = subprocess.run(
        [sys.executable, "-m", "faust", "-A", "workers.app", "worker", "--without-web"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    [line] = [ln for ln in done.stderr.splitlines() if ln.startswith("eventguard:")]
    assert "`eventguard kafka start`" in line and "KAFKA_BOOTSTRAP_SERVERS=host:port" in line


def test_the_worker_produces_with_acks_all(app_module: ModuleType) -> None:
    # With min.insync.replicas=2 on a cluster, only acks=all makes an output two copies.
    import asyncio

    async def acks() -> int:
        producer = app_module.app.producer._new_producer()
        return int(producer._sender._acks)

    assert app_module.app.conf.producer_acks == -1
    assert asyncio.run(acks()) == -1
