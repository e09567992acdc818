"""Faults that tests inject into a real worker process, at the place the bug lives.

Python imports `sitecustomize` at start-up from the path; a test puts this folder on
PYTHONPATH of the process it starts (tests/faults/__init__.py). Without an EG_FAULT_*
variable this module does nothing.

EG_FAULT_DROP_TOMBSTONE=<record key>: the first batch of fetched records of a key table
changelog (`*-keys-changelog`) that holds the tombstone of that key is thrown away after
aiokafka moved the partition's position past it, once per consumer. That is what
faust-streaming's `Consumer.getmany` does on a flow stop, a generation change or a
cleared changelog queue (../shared/KAFKA-AND-FAUST-NOTES.md): both the Faust consumer and
any other reader in the process lose it, exactly as a rebalance at the wrong moment would.

EG_FAULT_DROP_FIRST_FETCH=<topic suffix>: the first batch of fetched records of a topic
whose name ends with the suffix is thrown away the same way, once per consumer: a table
recovery that loses its first fetch waits for those records for ever.

EG_FAULT_DROP_REREAD=<topic suffix>: the first fetched batch, of a topic whose name ends
with the suffix, that starts below an offset this consumer already fetched of that
partition (a partition read again after a seek back) is thrown away the same way, once per
consumer: a standby partition that became active is read again from 0 by the recovery.
"""

from __future__ import annotations

import os
import sys

_TOMBSTONE = os.environ.get("EG_FAULT_DROP_TOMBSTONE", "").encode()
_FIRST_OF = os.environ.get("EG_FAULT_DROP_FIRST_FETCH", "")
_REREAD_OF = os.environ.get("EG_FAULT_DROP_REREAD", "")


def _drops(topic: str, records: list, fetched_up_to: int) -> bool:  # type: ignore[type-arg]
    if _FIRST_OF:
        return topic.endswith(_FIRST_OF)
    if _REREAD_OF:
        return topic.endswith(_REREAD_OF) and records[0].offset < fetched_up_to
    return topic.endswith("-keys-changelog") and any(
        r.key == _TOMBSTONE and r.value is None for r in records)


if _TOMBSTONE or _FIRST_OF or _REREAD_OF:
    from aiokafka.consumer import fetcher

    _fetched_records = fetcher.Fetcher.fetched_records

    async def _dropping(self, partitions, timeout=0, max_records=None):  # type: ignore[no-untyped-def]
        got = await _fetched_records(self, partitions, timeout=timeout, max_records=max_records)
        seen = self.__dict__.setdefault("_eg_fetched_up_to", {})
        for tp, records in list(got.items()):
            if not records:
                continue
            up_to = seen.get(tp, -1)
            seen[tp] = max(up_to, records[-1].offset)
            if not getattr(self, "_eg_dropped", False) and _drops(tp.topic, records, up_to):
                self._eg_dropped = True
                del got[tp]
                print(f"FAULT: dropped {len(records)} fetched records of {tp.topic} "
                      f"(offsets {records[0].offset}-{records[-1].offset})",
                      file=sys.stderr, flush=True)
        return got

    fetcher.Fetcher.fetched_records = _dropping
