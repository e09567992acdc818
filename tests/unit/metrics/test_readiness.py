"""What /ready on a worker answers (workers/metrics/readiness.py)."""

from workers.metrics.readiness import Readiness


def test_ready_only_with_all_four() -> None:
    ready = Readiness(partitions_assigned=True, key_table_problem=None, nonces_caught_up=True)
    assert ready.problem is None
    assert ready.body() == {"status": "ok", "checks": {
        "partitions_assigned": True, "key_table_current": True, "nonces_caught_up": True,
        "key_source_loaded": True}}


def test_the_first_missing_step_is_the_reason() -> None:
    starting = Readiness(partitions_assigned=False, key_table_problem="loading the key table",
                         nonces_caught_up=False)
    assert starting.problem is not None and starting.problem.startswith("waiting for partitions")
    behind = "key table 3 records behind its changelog for 1.2 s"
    stale = Readiness(partitions_assigned=True, key_table_problem=behind, nonces_caught_up=True)
    assert stale.problem == behind
    body = stale.body()
    assert body["status"] == "not ready" and body["reason"] == behind
    assert body["checks"] == {"partitions_assigned": True, "key_table_current": False,
                              "nonces_caught_up": True, "key_source_loaded": True}
    nonces = Readiness(partitions_assigned=True, key_table_problem=None, nonces_caught_up=False)
    assert nonces.problem == "reading the nonces topic"



def test_a_leader_whose_key_source_never_loaded_is_not_ready() -> None:
    why = "api key web: unknown field 'origin' (did you mean 'origins'?)"
    broken = Readiness(partitions_assigned=True, key_table_problem=None, nonces_caught_up=True,
                       key_source_problem=why)
    assert broken.problem == f"key source: {why}"
    assert broken.body()["checks"]["key_source_loaded"] is False  # type: ignore[index]
