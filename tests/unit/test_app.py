"""The Faust app: at-least-once with few re-decisions (issue 8), and its key table (issue 10)."""

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


def test_the_key_table_is_a_global_table_read_by_every_worker(app_module: ModuleType) -> None:
    keys = app_module.keys
    assert keys.is_global and keys.partitions == 1 and keys.default is None
    # Without these, a worker that does not write the table keeps a stale copy of it.
    assert keys.synchronize_all_active_partitions and keys.recovery_buffer_size == 1


def test_the_key_table_changelog_is_the_declared_topic(app_module: ModuleType) -> None:
    from workers import topics
    from workers.keys.table import changelog_topic

    spec = {s.name: s for s in topics.load_specs()}["eventguard-keys-changelog"]
    config = app_module.config
    assert app_module.keys.changelog_topic_name == changelog_topic(config.app_id) == \
        config.topic(spec.name)
    assert spec.partitions == 1 and spec.config["cleanup.policy"] == "compact"


def test_table_recovery_keeps_the_flow_stopped_until_streams_are_sought(
        app_module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from faust.tables.recovery import Recovery

    app = app_module.app
    flow_when_streams_resume: list[bool] = []

    async def faust_own(self: Recovery, generation_id: int = 0) -> None:
        # Faust resumes the stream partitions first thing, and seeks them after.
        flow_when_streams_resume.append(self.app.consumer.flow_active)  # type: ignore[attr-defined]

    monkeypatch.setattr(Recovery, "on_recovery_completed", faust_own)
    app.consumer.resume_flow()  # as table recovery leaves it
    asyncio.run(app.tables.recovery.on_recovery_completed(1))
    assert flow_when_streams_resume == [False]


def test_a_key_table_change_is_acked_only_once_kafka_has_it(
        app_module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from workers.agents import apply_config, outbox

    died: list[str] = []
    monkeypatch.setattr(outbox, "die", died.append)
    acked: list[str] = []

    class Event:
        def __init__(self, name: str) -> None:
            self.name = name

        def ack(self) -> None:
            acked.append(self.name)

    async def go() -> None:
        loop = asyncio.get_running_loop()
        ok, failed, stopping = loop.create_future(), loop.create_future(), loop.create_future()
        ok.set_result(None)
        failed.set_exception(OSError("gone"))
        stopping.cancel()
        for name, sent in (("ok", ok), ("failed", failed), ("stopping", stopping)):
            apply_config._written(Event(name), sent)

    asyncio.run(go())
    assert acked == ["ok"]
    assert died == ["a key table change was not delivered (OSError)"]
