"""Records the Kafka client cannot parse become placeholders, not a crashed worker.

aiokafka 0.14 decodes header names as strict UTF-8. A record with a header name
that is not (librdkafka and kcat can write one) raises CorruptRecordException
in the fetcher: Faust's consumer crashes, the worker exits, and every restart
meets the same record, so its partition never moves again.

`install()` wraps each fetched batch so that such a record, and the rest of its
batch (the parser cannot resume inside a batch), is handed on as a placeholder
with no key or value and one header, UNREADABLE_HEADER. The authorize agent
rejects it with `malformed_event` under its `<topic>-<partition>-<offset>` id,
so it is decided and audited like any other garbage.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterator
from typing import Any

from aiokafka.consumer import fetcher

from workers.auth.request import UNREADABLE_HEADER

log = logging.getLogger(__name__)
_installed = False


class _Placeholder:
    __slots__ = ("headers", "offset", "timestamp")
    timestamp_type = 0
    key = None
    value = None
    checksum = None

    def __init__(self, offset: int, reason: str) -> None:
        self.offset = offset
        self.timestamp = int(time.time() * 1000)
        self.headers = ((UNREADABLE_HEADER, reason.encode()),)


class _Batch:
    def __init__(self, batch: Any) -> None:
        self._batch = batch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)

    def __next__(self) -> Any:
        return next(self._batch)

    def __iter__(self) -> Iterator[Any]:
        last = self._batch.base_offset - 1
        records: Iterator[Any] | None = None
        while True:
            try:
                # iter() decompresses: a codec this client lacks fails here.
                records = records or iter(self._batch)
                record = next(records)
            except StopIteration:
                return
            except Exception as exc:
                reason = f"{type(exc).__name__} from the Kafka client"
                log.warning("unreadable records at offsets %d-%d: %s", last + 1,
                            self._batch.next_offset - 1, reason)
                for offset in range(last + 1, self._batch.next_offset):
                    yield _Placeholder(offset, reason)
                return
            last = record.offset
            yield record


class _Records:
    def __init__(self, records: Any) -> None:
        self._records = records

    def has_next(self) -> bool:
        return bool(self._records.has_next())

    def next_batch(self) -> Any:
        batch = self._records.next_batch()
        return _Batch(batch) if batch is not None else None


def install() -> None:
    """Wrap aiokafka's fetched batches; idempotent.

    Fixes a consumer that dies on a record whose header name is not UTF-8 (the module's
    docstring). Upstream: no issue found in aiokafka. Remove when aiokafka hands such a
    record on (tests/unit/kafka/test_unreadable.py's plain-library test then fails)."""
    global _installed
    if _installed:
        return
    original = fetcher.PartitionRecords.__init__

    @functools.wraps(original)  # fixes.py digests the library's source through it
    def init(self: Any, tp: Any, records: Any, *args: Any, **kwargs: Any) -> None:
        original(self, tp, _Records(records), *args, **kwargs)

    fetcher.PartitionRecords.__init__ = init
    _installed = True
