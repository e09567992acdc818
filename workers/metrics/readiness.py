"""When a worker is ready: what /ready on its web port answers, as a pure function."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Readiness:
    partitions_assigned: bool  # the group gave this worker its assignment, no rebalance running
    # Why the key table is not current (workers/keys/freshness.py), or None when it is:
    # applied up to an end offset the broker reported, and not behind one for a second.
    key_table_problem: str | None
    nonces_caught_up: bool  # the nonces topic was read to its end once
    # The leader's: why its key source gave no good keys yet (every record invalid, say).
    key_source_problem: str | None = None

    @property
    def problem(self) -> str | None:
        """Why the worker is not ready (the first thing missing, in start-up order)."""
        if not self.partitions_assigned:
            return "waiting for partitions (joining the group or rebalancing)"
        if self.key_table_problem is not None:
            return self.key_table_problem
        if not self.nonces_caught_up:
            return "reading the nonces topic"
        if self.key_source_problem is not None:
            return f"key source: {self.key_source_problem}"
        return None

    def body(self) -> dict[str, object]:
        checks = {"partitions_assigned": self.partitions_assigned,
                  "key_table_current": self.key_table_problem is None,
                  "nonces_caught_up": self.nonces_caught_up,
                  "key_source_loaded": self.key_source_problem is None}
        problem = self.problem
        if problem is None:
            return {"status": "ok", "checks": checks}
        return {"status": "not ready", "reason": problem, "checks": checks}
