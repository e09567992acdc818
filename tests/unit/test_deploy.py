"""deploy/: the Grafana dashboard and the Prometheus rules ask only for metrics that
eventguard and Faust export, with PromQL functions that exist, and the files parse."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "eventguard-dashboard.json"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"

# eventguard's own metrics (docs/operations.md lists them all).
EVENTGUARD = {
    "eventguard_decisions_total",
    "eventguard_decision_duration_seconds_bucket",
    "eventguard_ingest_kafka_ack_seconds_bucket",
    "eventguard_ingest_requests_total",
    "eventguard_ingest_unavailable_total",
    "eventguard_keys",
    "eventguard_key_table_lag",
    "eventguard_key_table_stalls_total",
    "eventguard_nonces",
    "eventguard_worker_ready",
}
# Faust's Prometheus sensor (faust/sensors/prometheus.py), named after the app id: per
# topic and partition, the end offset the consumer saw and the offset it committed.
FAUST = {
    "eventguard_topic_partition_end_offset",
    "eventguard_topic_partition_offset_commited",  # sic: Faust's spelling
}
PROMETHEUS_OWN = {"up"}
ALLOWED = EVENTGUARD | FAUST | PROMETHEUS_OWN

FUNCTIONS = {
    "sum", "max", "min", "avg", "count", "topk", "bottomk", "rate", "irate", "increase",
    "histogram_quantile", "clamp_min", "clamp_max", "abs", "vector", "scalar", "absent",
    "label_replace", "delta", "deriv", "max_over_time", "min_over_time", "avg_over_time",
}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
            "or", "unless", "offset"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (enough PromQL for our expressions)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    text = re.sub(r"\b\d+(?:\.\d+)?(?:ms|[smhdwy])?\b", "", text)  # numbers, durations
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word, after = match.group(), text[match.end():].lstrip()
        if word in KEYWORDS:
            continue
        if after.startswith("("):
            assert word in FUNCTIONS, f"unknown PromQL function {word}() in {expr}"
        elif word not in ("Inf", "NaN"):
            names.add(word)
    return names


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in items:
        yield p
        yield from panels(p.get("panels", []))


def dashboard_exprs(dash: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in panels(dash["panels"]) for t in p.get("targets", [])]


def rule_exprs(alerts: dict[str, Any]) -> list[tuple[str, str]]:
    return [(r.get("alert") or r["record"], r["expr"])
            for group in alerts["groups"] for r in group["rules"]]


def test_metric_names_reads_promql() -> None:
    expr = ('histogram_quantile(0.99, sum by (le) (rate(x_seconds_bucket{route="/a{b}"}[1m])))'
            ' / on (instance) group_left y offset 5m > 2 * z')
    assert metric_names(expr) == {"x_seconds_bucket", "y", "z"}
    with pytest.raises(AssertionError, match="unknown PromQL function"):
        metric_names("rat(x[1m])")


def test_the_dashboard_asks_only_for_known_metrics() -> None:
    dash = json.loads(DASHBOARD.read_text())
    exprs = dashboard_exprs(dash)
    assert exprs
    used = set()
    for title, expr in exprs:
        names = metric_names(expr)
        assert names, f"{title}: no metric in {expr}"
        assert names <= ALLOWED, f"{title}: unknown metrics {names - ALLOWED}"
        used |= names
    assert used >= EVENTGUARD | FAUST, f"no panel for {(EVENTGUARD | FAUST) - used}"


def test_the_dashboard_has_the_panels_operators_look_for() -> None:
    exprs = dict(dashboard_exprs(json.loads(DASHBOARD.read_text())))
    assert exprs["Decisions per second by reason"] == (
        "sum by (reason) (rate(eventguard_decisions_total[1m]))")
    assert "histogram_quantile(0.99" in exprs["Decision duration p50 / p99"]
    assert "histogram_quantile(0.99" in exprs["Kafka ack latency p50 / p99"]
    assert "by (topic, partition)" in exprs["Consumer lag by partition"]
    assert "by (status)" in exprs["Ingest requests by status"]


def test_the_dashboard_takes_its_datasource_from_a_variable() -> None:
    dash = json.loads(DASHBOARD.read_text())
    [var] = [v for v in dash["templating"]["list"] if v["type"] == "datasource"]
    assert var["query"] == "prometheus"
    ref = {"type": "prometheus", "uid": f"${{{var['name']}}}"}
    for p in panels(dash["panels"]):
        if p["type"] == "row":
            continue
        assert p["datasource"] == ref, p["title"]
        assert all(t["datasource"] == ref for t in p["targets"]), p["title"]
    ids = [p["id"] for p in panels(dash["panels"])]
    assert len(ids) == len(set(ids)) and dash["uid"] == "eventguard"


def test_the_alert_rules_parse_and_ask_only_for_known_metrics() -> None:
    alerts = yaml.safe_load(ALERTS.read_text())
    rules = rule_exprs(alerts)
    assert {name for name, _ in rules} >= {
        "EventguardIngestUnavailable", "EventguardConsumerLagHigh", "EventguardWorkerNotReady",
        "EventguardRejectionRatioSpike"}
    for name, expr in rules:
        assert metric_names(expr) <= ALLOWED, name
    for group in alerts["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in ("warning", "critical")
            assert rule["annotations"]["summary"]
            assert re.fullmatch(r"\d+[smh]", rule.get("for", "0m"))


def test_prometheus_loads_the_alert_rules_it_is_given() -> None:
    prometheus = yaml.safe_load(PROMETHEUS.read_text())
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    # The compose file mounts deploy/prometheus at /etc/prometheus.
    mount = next(v for v in compose["services"]["prometheus"]["volumes"]
                 if v.startswith("./deploy/prometheus:"))
    inside = mount.split(":")[1]
    for rule_file in prometheus["rule_files"]:
        assert rule_file.startswith(inside + "/")
        assert (DEPLOY / "prometheus" / rule_file[len(inside) + 1:]).exists()
    for job in prometheus["scrape_configs"]:
        assert job["metrics_path"] == "/metrics"
