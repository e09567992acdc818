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

EG_FAULT_DROP_REREAD=<topic suffix>: of a partition this process followed as a standby
(Faust's `Recovery.add_standby`, recorded, not changed), the first batch fetched after a
seek back below what the consumer had already fetched is thrown away the same way, once per
consumer: the recovery of a standby that became active reads it again from 0, and loses
that read. aiokafka's own reset of a newly assigned partition is not a seek and is spared
(an earlier version dropped that read, which the recovery's seek then repeated).
"""

from __future__ import annotations

import os
import sys

_TOMBSTONE = os.environ.get("EG_FAULT_DROP_TOMBSTONE", "").encode()
_FIRST_OF = os.environ.get("EG_FAULT_DROP_FIRST_FETCH", "")
_REREAD_OF = os.environ.get("EG_FAULT_DROP_REREAD", "")


_followed: set[tuple[str, int]] = set()  # partitions this process read as a standby
_sought: dict[tuple[str, int], int] = {}  # partition -> offset of a seek not yet fetched


def _drops(topic: str, partition: int, records: list,  # type: ignore[type-arg]
           fetched_up_to: int, sought: int | None) -> bool:
    if _FIRST_OF:
        return topic.endswith(_FIRST_OF)
    if _REREAD_OF:
        return (topic.endswith(_REREAD_OF) and (topic, partition) in _followed
                and sought is not None and sought < fetched_up_to)
    return topic.endswith("-keys-changelog") and any(
        r.key == _TOMBSTONE and r.value is None for r in records)


if _REREAD_OF:
    from aiokafka import AIOKafkaConsumer
    from faust.tables.recovery import Recovery

    _add_standby = Recovery.add_standby
    _seek = AIOKafkaConsumer.seek

    def _recording_standby(self, table, tp):  # type: ignore[no-untyped-def]
        _followed.add((tp.topic, tp.partition))
        return _add_standby(self, table, tp)

    def _recording_seek(self, partition, offset):  # type: ignore[no-untyped-def]
        _sought[(partition.topic, partition.partition)] = offset
        return _seek(self, partition, offset)

    Recovery.add_standby = _recording_standby  # type: ignore[method-assign]
    AIOKafkaConsumer.seek = _recording_seek

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
            sought = _sought.pop((tp.topic, tp.partition), None)
            if not getattr(self, "_eg_dropped", False) and _drops(tp.topic, tp.partition,
                                                                  records, up_to, sought):
                self._eg_dropped = True
                del got[tp]
                print(f"FAULT: dropped {len(records)} fetched records of {tp.topic} "
                      f"(offsets {records[0].offset}-{records[-1].offset})",
                      file=sys.stderr, flush=True)
        return got

    fetcher.Fetcher.fetched_records = _dropping
