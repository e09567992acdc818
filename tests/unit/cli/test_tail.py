"""`eventguard tail` prints a JSON line for any record someone could write to a topic."""

from __future__ import annotations

from types import SimpleNamespace

import orjson

from workers.cli.tail import as_json


def record(value: bytes | None, headers: tuple[tuple[str, bytes | None], ...] = ()
           ) -> SimpleNamespace:
    return SimpleNamespace(topic="audit-log", partition=0, offset=7, key=b"k\xff",
                           value=value, headers=headers)


def test_json_values_are_printed_as_json() -> None:
    line = orjson.loads(as_json(record(b'{"reason": "ok"}', (("h", b"v"),))))
    assert line == {"topic": "audit-log", "partition": 0, "offset": 7, "key": "k\ufffd",
                    "headers": {"h": "v"}, "value": {"reason": "ok"}}


def test_anything_else_is_printed_as_text() -> None:
    deep = b"[" * 1000 + b"]" * 1000  # orjson reads 1024 levels and writes 254
    assert orjson.loads(as_json(record(deep)))["value"] == deep.decode()
    assert orjson.loads(as_json(record(b"\xff\xfe not json")))["value"] == "\ufffd\ufffd not json"
    line = orjson.loads(as_json(record(None, (("null-header", None),))))
    assert line["value"] is None and line["headers"] == {"null-header": None}
