"""The worker's metrics as a scrape shows them (workers/metrics/worker.py), without Faust."""

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, generate_latest

from tests.unit.metrics.scrape import parse, value
from workers.auth.decision import Method
from workers.auth.reasons import Reason
from workers.metrics.worker import Decisions, Partition, WorkerCollector


class Probe:
    ready_now = False

    def keys(self) -> int:
        return 3

    def nonces(self) -> int:
        return 7

    def ready(self) -> bool:
        return self.ready_now

    def key_table_lag(self) -> int | None:
        return 2

    def key_table_stalls(self) -> int:
        return 1

    def key_table_offset(self) -> int | None:
        return 40

    def jwks_fetches(self) -> Mapping[str, int]:
        return {"ok": 1, "failed": 4}

    def partitions(self) -> list[Partition]:
        return [Partition("raw-events", 0, 120, 100), Partition("raw-events", 1, 50, None),
                Partition("eventguard-keys-changelog", 0, 9, None)]

    def rebalances(self) -> int:
        return 2


def scrape(decisions: Decisions, probe: Probe) -> str:
    registry = CollectorRegistry()
    registry.register(WorkerCollector(decisions, probe))
    return generate_latest(registry).decode()


def test_decisions_by_decision_reason_and_method() -> None:
    d = Decisions()
    d.counts[Reason.OK, Method.SERVER_SECRET] += 3
    d.counts[Reason.UNKNOWN_KEY, None] += 2
    d.counts[Reason.JWT_INVALID, Method.JWT] += 1
    for us in (4, 40, 4_000_000):
        d.duration_us.observe(us)
    s = parse(scrape(d, Probe()))
    name = "eventguard_decisions_total"
    assert value(s, name, decision="accepted", reason="ok", method="server_secret") == 3
    assert value(s, name, decision="rejected", reason="unknown_key", method="none") == 2
    assert value(s, name, decision="rejected", reason="jwt_invalid", method="jwt") == 1
    assert value(s, "eventguard_decision_duration_seconds_count") == 3
    assert value(s, "eventguard_decision_duration_seconds_bucket", le="1e-05") == 1
    assert value(s, "eventguard_decision_duration_seconds_bucket", le="3.5") == 2
    assert value(s, "eventguard_decision_duration_seconds_bucket", le="+Inf") == 3
    assert abs((value(s, "eventguard_decision_duration_seconds_sum") or 0) - 4.000044) < 1e-9


def test_state_read_at_scrape_time() -> None:
    probe = Probe()
    s = parse(scrape(Decisions(), probe))
    assert value(s, "eventguard_keys") == 3
    assert value(s, "eventguard_nonces") == 7
    assert value(s, "eventguard_key_table_lag") == 2
    assert value(s, "eventguard_key_table_stalls_total") == 1
    assert value(s, "eventguard_key_table_offset") == 40
    assert value(s, "eventguard_worker_ready") == 0
    assert value(s, "eventguard_jwks_fetches_total", outcome="failed") == 4
    assert value(s, "eventguard_rebalances_total") == 2
    assert value(s, "eventguard_assigned_partitions", topic="raw-events") == 2
    assert value(s, "eventguard_consumer_lag", topic="raw-events", partition="0") == 20
    # no committed offset (never committed, or a table's changelog): no lag sample
    assert value(s, "eventguard_consumer_lag", topic="raw-events", partition="1") is None
    assert value(s, "eventguard_topic_partition_end_offset", topic="raw-events",
                 partition="1") == 50
    probe.ready_now = True
    assert value(parse(scrape(Decisions(), probe)), "eventguard_worker_ready") == 1
