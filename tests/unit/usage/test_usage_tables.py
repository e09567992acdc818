"""The usage tables and their topics, as the usage process declares them (no broker)."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from workers import topics


@pytest.fixture(scope="module")
def app_module() -> ModuleType:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
        return importlib.import_module("workers.usage_app")


def test_the_usage_topics_are_declared_and_copartitioned(app_module: ModuleType) -> None:
    config = app_module.config
    specs = {config.topic(s.name): s for s in topics.load_specs()}
    deltas = specs[app_module.deltas.get_topic_name()]
    counts = specs[app_module.counts.table.changelog_topic_name]
    last = specs[app_module.last.changelog_topic_name]
    # Faust writes a table change to the partition of the event being processed, and its
    # router finds a key id's worker by hashing it over the changelog's partitions.
    assert deltas.partitions == counts.partitions == last.partitions == app_module.USAGE_PARTITIONS
    assert app_module.counts.table.partitions == app_module.USAGE_PARTITIONS
    assert counts.config["cleanup.policy"] == "compact,delete"
    assert int(counts.config["retention.ms"]) >= 3600 * 1000
    assert last.config["cleanup.policy"] == "compact"


def test_the_usage_window_is_a_minute_kept_an_hour(app_module: ModuleType) -> None:
    from workers.usage import summary

    window = app_module.counts.table.window
    assert window.size == summary.WINDOW_S == 60 and window.expires == summary.SPAN_S == 3600


def test_faust_does_not_serve_table_contents(app_module: ModuleType) -> None:
    # /table/keys/<key> would hand out digests and sealed access secrets.
    assert app_module.app.conf.web_tables_enabled is False


def test_the_usage_process_is_an_app_of_its_own(app_module: ModuleType) -> None:
    """Its own app id, so its own consumer group and changelog names; the tally's group
    differs from both the worker's and the usage app's."""
    from workers.usage_agents import tally

    config = app_module.config
    assert app_module.app.conf.id == config.usage_app_id == f"{config.app_id}-usage"
    assert len({tally.GROUP, config.app_id, config.usage_app_id}) == 3
    assert app_module.counts.table.changelog_topic_name == \
        config.topic("eventguard-usage-counts-changelog")
    assert app_module.app.conf.web_port == config.usage_web_port


def test_the_worker_has_no_usage_table_or_agent() -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
        worker = importlib.import_module("workers.app")
    worker.app.discover()
    assert [t for t in worker.app.tables] == ["keys"]
    assert not [name for name in worker.app.agents if "usage" in name]
