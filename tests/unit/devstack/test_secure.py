"""The roles of a secure cluster: what each Kafka user may touch, and the docs' commands."""

from __future__ import annotations

import re
import shlex

from workers.devstack import secure
from workers.paths import project_root

ACLS = secure.role_acls("p.", "p.eventguard")


def grants(role: str) -> set[tuple[str, str, str]]:
    return {(op, a.resource, a.name + ("*" if a.prefixed else "")) for a in ACLS[role]
            for op in a.operations}


def test_the_ingest_may_only_write_raw_events() -> None:
    assert grants("ingest") == {("Describe", "topic", "p.raw-events"),
                                ("Write", "topic", "p.raw-events")}


def test_the_downstream_consumer_reads_only_accepted_events() -> None:
    assert {g for g in grants("consumer") if g[1] == "topic"} == {
        ("Describe", "topic", "p.accepted-events"), ("Read", "topic", "p.accepted-events")}


def test_only_the_worker_writes_the_key_table_and_outputs() -> None:
    for role in ("ingest", "usage", "keyadmin", "consumer"):
        written = {name for op, kind, name in grants(role) if op in ("Write", "Create")}
        assert "p.eventguard-*" not in written and "p.accepted-events" not in written, role
    assert ("Write", "topic", "p.eventguard-*") in grants("worker")
    # The usage process's changelogs are under the worker's prefix, but its grant is narrower.
    assert ("Write", "topic", "p.eventguard-usage-*") in grants("usage")


def test_auth_config_is_written_by_the_key_admin_and_the_worker_only() -> None:
    writers = {role for role in ACLS if ("Write", "topic", "p.auth-config") in grants(role)}
    assert writers == {"keyadmin", "worker"}


def test_the_docs_give_exactly_these_acls_as_kafka_acls_commands() -> None:
    root = project_root()
    assert root is not None
    text = (root / "docs" / "operations.md").read_text()
    documented = [shlex.split(line.removeprefix("kafka-acls.sh ")) for line in
                  re.findall(r"^kafka-acls\.sh .*$", text, re.MULTILINE)]
    assert documented == secure.acl_commands("", "eventguard")
