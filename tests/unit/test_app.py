"""The Faust app is configured for at-least-once with few re-decisions (issue 8)."""

from __future__ import annotations

import importlib
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
