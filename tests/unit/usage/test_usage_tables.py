"""The usage tables and their topics, as the worker declares them (no broker)."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from workers import topics


@pytest.fixture(scope="module")
def app_module() -> ModuleType:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
        return importlib.import_module("workers.app")


def test_the_usage_topics_are_declared_and_copartitioned(app_module: ModuleType) -> None:
    config = app_module.config
    specs = {config.topic(s.name): s for s in topics.load_specs()}
    deltas = specs[app_module.usage_deltas.get_topic_name()]
    counts = specs[app_module.usage_counts.table.changelog_topic_name]
    last = specs[app_module.usage_last.changelog_topic_name]
    # Faust writes a table change to the partition of the event being processed, and its
    # router finds a key id's worker by hashing it over the changelog's partitions.
    assert deltas.partitions == counts.partitions == last.partitions == app_module.USAGE_PARTITIONS
    assert app_module.usage_counts.table.partitions == app_module.USAGE_PARTITIONS
    assert counts.config["cleanup.policy"] == "compact,delete"
    assert int(counts.config["retention.ms"]) >= 3600 * 1000
    assert last.config["cleanup.policy"] == "compact"


def test_the_usage_window_is_a_minute_kept_an_hour(app_module: ModuleType) -> None:
    from workers.usage import summary

    window = app_module.usage_counts.table.window
    assert window.size == summary.WINDOW_S == 60 and window.expires == summary.SPAN_S == 3600


def test_faust_does_not_serve_table_contents(app_module: ModuleType) -> None:
    # /table/keys/<key> would hand out digests and sealed access secrets.
    assert app_module.app.conf.web_tables_enabled is False
