"""A changelog record a table cannot read: plain Faust raises (its recovery then waits for
that record for good: tests/chaos/test_side_topics_fuzz.py); LenientTable skips it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.serializers import codecs

from workers.kafka.lenient_tables import LENIENT_JSON, LenientTable

GARBAGE = b"\xff not JSON"


def _event(key: Any, value: Any, offset: int) -> SimpleNamespace:
    message = SimpleNamespace(topic="t-changelog", partition=0, offset=offset, key=key,
                              value=value)
    return SimpleNamespace(key=key, value=value, message=message)


def _table(cls: type[faust.Table]) -> Any:  # type: ignore[type-arg]
    app = faust.App(f"lenient-{cls.__name__}", broker="kafka://127.0.0.1:1",
                    store="memory://", Table=cls)
    return app.Table("t", default=None)


def _apply(table: Any) -> None:
    table.apply_changelog_batch([_event("a", 1, 0), _event({"not": "hashable"}, 2, 1),
                                 _event("b", 3, 2)])


def test_plain_faust_cannot_read_a_changelog_record_that_is_not_json() -> None:
    with pytest.raises(ValueError):  # UnicodeDecodeError
        codecs.loads("json", GARBAGE)


def test_plain_faust_cannot_apply_a_batch_with_a_key_a_table_cannot_hold() -> None:
    table = _table(faust.Table)
    with pytest.raises(TypeError):
        _apply(table)
    assert "b" not in table.data


def test_a_record_that_is_not_json_reads_as_none() -> None:
    assert codecs.loads(LENIENT_JSON, GARBAGE) is None
    assert _table(LenientTable).value_serializer == LENIENT_JSON


def test_a_record_the_table_cannot_hold_is_skipped_and_the_rest_applied() -> None:
    table = _table(LenientTable)
    _apply(table)
    assert dict(table.data) == {"a": 1, "b": 3}
