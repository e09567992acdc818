"""A record whose header name is not UTF-8: plain aiokafka raises, the fix hands it on."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from aiokafka.consumer import fetcher
from aiokafka.record import default_records
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import TopicPartition

from workers.auth.request import UNREADABLE_HEADER
from workers.kafka import fixes


class _RawName(str):
    """A header name that encodes to bytes that are not UTF-8, as kcat can write."""

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return b"eg-\xff\xfe"


def _fetched() -> Any:
    """What aiokafka's fetcher makes of a fetched batch: the bad record, then a good one."""
    # aiokafka's C builder encodes names itself; the Python one calls encode().
    builder = default_records._DefaultRecordBatchBuilderPy(
        magic=2, compression_type=0, is_transactional=0, producer_id=-1, producer_epoch=-1,
        base_sequence=-1, batch_size=1 << 20)
    builder.append(0, timestamp=None, key=b"k", value=b"v", headers=[(_RawName("x"), b"v")])
    builder.append(1, timestamp=None, key=b"k", value=b"v", headers=[])
    records = MemoryRecords(bytes(builder.build()))
    return fetcher.PartitionRecords(TopicPartition("raw-events", 0), records, [], 0,
                                    None, None, False, 0)


def test_plain_aiokafka_raises_on_a_header_name_that_is_not_utf8(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fixes.install()
    plain = inspect.unwrap(fetcher.PartitionRecords.__init__)
    monkeypatch.setattr(fetcher.PartitionRecords, "__init__", plain)
    with pytest.raises(UnicodeDecodeError):
        list(_fetched())


def test_the_record_and_the_rest_of_its_batch_become_placeholders() -> None:
    fixes.install()
    got = list(_fetched())
    assert [r.offset for r in got] == [0, 1]
    assert all(r.key is None and r.value is None for r in got)
    assert [name for r in got for name, _ in r.headers] == [UNREADABLE_HEADER] * 2
