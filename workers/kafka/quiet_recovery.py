"""Faust's table recovery, ending with the consumer flow stopped until streams are sought.

faust-streaming 0.15.3 `Recovery.on_recovery_completed` (faust/tables/recovery.py) resumes
the stream partitions while the consumer flow is still on from reading the changelogs,
then seeks them to their committed offsets, then calls `app.flow_control.resume()`, which
empties every stream buffer and the changelog queue. The fetcher delivers what aiokafka
prefetched during the recovery in between: those records are thrown away unprocessed,
and a fetch still in flight moves the read offset past them, so once they are fetched
again `Consumer._drain_messages` drops them as already read. They are never decided and
commits stop at the first of them (4 workers starting on a 10,000-key table lost 80 to
300 raw-events records in 3 runs of 9). An app without tables takes another path
(`Recovery._resume_streams`) with the flow stopped, which is what this restores.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from mode import Service

from workers.kafka import recovery_watchdog

DRAIN_WAIT_S = 5.0  # for changelog records already queued: applied, not cleared


class QuietRecovery(Recovery):
    @Service.task
    async def _watchdog(self) -> None:
        """Re-seeks a changelog partition that Faust stopped reading while records remain
        (workers/kafka/recovery_watchdog.py). It runs here because Faust starts app timers
        only after the first recovery, the one most likely to hang. It reads
        `active_offsets`/`standby_offsets` as `_slurp_changelogs` keeps them.

        Upstream: robinhood/faust #580 with PR #583 (never merged); stalls faust-streaming
        #176 (PR #373 unmerged), #432, #597. Remove when Faust seeks a changelog partition
        back to the first record not applied after it drops fetched records."""
        await recovery_watchdog.watch(self.app, self.sleep, lambda: self.should_stop)

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        """Faust's, with the flow stopped and the changelog queue drained first: stream
        records prefetched during a recovery were thrown away (the module's docstring).

        Upstream: no issue found for this order; related, records lost when the flow stops:
        robinhood/faust #580 (PR #583, never merged). Remove when Faust resumes stream
        partitions with the flow stopped, after their seek."""
        consumer = self.app.consumer
        consumer.stop_flow()  # resume_flow() at the end of Faust's own method
        queue = self.tables.changelog_queue
        for _ in range(int(DRAIN_WAIT_S / 0.01)):
            if not queue.qsize():
                break
            await asyncio.sleep(0.01)
        await super().on_recovery_completed(generation_id)


    async def _seek_offsets(self, consumer: Any, tps: Any, offsets: Any, title: str) -> None:
        """Faust's seek, with no offset below 0 and none missing. Faust maps -1 (nothing
        read yet) to 0 but passes None on, and aiokafka raises on it: a worker whose
        standby usage partitions had no offset crashed in "Starting standby partitions"
        (tests/chaos/test_key_table.py, a restart from an empty data dir).

        Upstream: no issue found. Remove when Faust seeks a standby without offset to 0."""
        await consumer.seek_wait({tp: _at_least_0(offsets[tp]) for tp in tps})


def _at_least_0(offset: int | None) -> int:
    return 0 if offset is None or offset < 0 else offset


class QuietTableManager(TableManager):
    """Faust's table manager with QuietRecovery (the app setting `TableManager`)."""

    @property
    def recovery(self) -> Any:
        if self._recovery is None:
            self._recovery = QuietRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
