"""The command line finds the embedded broker and hands its address on through
$KAFKA_BOOTSTRAP_SERVERS; the worker and the ingest only read settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from workers.cli import main
from workers.devstack import broker
from workers.devstack.broker import BrokerState


@pytest.fixture
def no_address(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    config = tmp_path / "eventguard.yaml"
    config.write_text("api_keys: []\n")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "")
    monkeypatch.setenv("EVENTGUARD_CONFIG", str(config))
    return config


def running(monkeypatch: pytest.MonkeyPatch, state: BrokerState | None) -> None:
    monkeypatch.setattr(broker, "status", lambda: state)


def test_the_embedded_broker_is_named_for_this_process_and_its_children(
        no_address: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    running(monkeypatch, BrokerState(pid=1, port=40123, controller_port=40124))
    main._name_the_embedded_broker()
    assert os.environ["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:40123"


def test_a_cluster_named_in_the_config_wins(no_address: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    no_address.write_text("kafka: {bootstrap_servers: 'kafka-1:9092'}\n")
    running(monkeypatch, BrokerState(pid=1, port=40123, controller_port=40124))
    main._name_the_embedded_broker()
    assert os.environ["KAFKA_BOOTSTRAP_SERVERS"] == ""


def test_without_any_broker_a_command_says_how_to_get_one(
        no_address: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    running(monkeypatch, None)
    assert main.main(["keys", "list"]) == 2
    err = capsys.readouterr().err
    assert "`eventguard kafka start`" in err and "KAFKA_BOOTSTRAP_SERVERS=host:port" in err


def test_the_worker_serves_its_web_pages_only_on_a_port_given() -> None:
    parsed, rest = main.build_parser().parse_known_args(
        ["worker", "--config", "c.yaml", "--web-port", "6066", "--web-bind", "0.0.0.0"])
    assert main.faust_worker_argv(parsed.web_port, parsed.web_bind, rest) == [
        "eventguard", "worker", "--web-port", "6066", "--web-bind", "0.0.0.0", "-l", "info"]
    parsed, rest = main.build_parser().parse_known_args(["worker", "-l", "warning"])
    assert main.faust_worker_argv(parsed.web_port, parsed.web_bind, rest) == [
        "eventguard", "worker", "--without-web", "-l", "warning"]


def test_json_logs_leave_out_fausts_banner() -> None:
    assert main.faust_worker_argv(None, "127.0.0.1", [], quiet=True) == [
        "eventguard", "--quiet", "worker", "--without-web", "-l", "info"]
