"""A worker whose table recovery loses its first changelog fetch still starts deciding.

Deterministic: tests/faults/sitecustomize.py throws away the first fetched batch of the
key table's changelog in each consumer of the starting worker, after aiokafka moved past
it, as Faust does when the flow stops mid-fetch (issue 17). Faust's recovery then waits
for those records for ever; on 2b61f3c the worker never decided. Here the recovery
watchdog re-seeks the partition, and the key reader re-seeks its own.
"""

from __future__ import annotations

import asyncio

import pytest

from tests import faults
from tests.chaos.conftest import ChaosStack

pytestmark = pytest.mark.chaos


def test_a_recovery_that_lost_its_fetch_is_re_sought(chaos_stack: ChaosStack) -> None:
    cs = chaos_stack
    first = cs.worker("worker-1")
    cs.ingest()
    asyncio.run(cs.wait_deciding([first]))  # the changelog now holds the config's keys
    first.stop()
    faulty = cs.stack.worker(cs.config, name="worker-2",
                             env=faults.env(drop_first_fetch="-keys-changelog"))
    asyncio.run(cs.wait_deciding([faulty], timeout_s=90))
    log = cs.log_text("worker-2")
    assert log.count("FAULT: dropped") >= 2, "the fault did not fire in both readers"
    assert "recovery watchdog: " in log and "(active recovery)" in log, log[-3000:]
    assert "key table: stalled at offset" in log
