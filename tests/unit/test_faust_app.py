"""RawSchema and RawEvent (workers/faust_app.py): a raw-events record's bytes handed through
without Faust's serializer registry, and its headers dict built only when read. Each with
the plain library beside it."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from faust.types import Message

from workers.faust_app import RawEvent, RawSchema


class HeaderList(list[tuple[str, bytes]]):
    """A record's header list that counts how often it is read."""

    reads = 0

    def __iter__(self) -> Any:
        self.reads += 1
        return super().__iter__()


async def _decoded(schema: Any) -> tuple[Any, Message, HeaderList, list[str]]:
    """One record decoded by `schema` compiled for an app with the raw serializers, as the
    worker's is. Returns the event, the record, its header list and the serializer
    registry's calls."""
    app = faust.App("raw-schema-test", broker="kafka://127.0.0.1:1", store="memory://",
                    key_serializer="raw", value_serializer="raw")
    registry: list[str] = []
    serializers: Any = app.serializers
    loads_key, loads_value = serializers.loads_key, serializers.loads_value

    def counted_loads_key(*args: Any, **kwargs: Any) -> Any:
        registry.append("key")
        return loads_key(*args, **kwargs)

    def counted_loads_value(*args: Any, **kwargs: Any) -> Any:
        registry.append("value")
        return loads_value(*args, **kwargs)

    serializers.loads_key, serializers.loads_value = counted_loads_key, counted_loads_value
    decode = schema.compile(app)
    headers = HeaderList([("content-type", b"application/json")])
    message = Message("raw-events", 0, 7, 0.0, 0, headers, b"request-id", b'{"a":1}', None)
    event = await decode(message)
    return event, message, headers, registry


def test_plain_faust_decodes_through_the_registry_and_copies_the_headers_at_once() -> None:
    # When this fails, Faust hands raw bytes through by itself and RawSchema can go
    # (workers/kafka/fixes.py).
    event, message, headers, registry = asyncio.run(
        _decoded(faust.Schema(key_type=bytes, value_type=bytes)))
    assert type(event) is faust.Event  # app.conf.Event
    assert registry == ["key", "value"]  # per record
    assert headers.reads == 1  # the headers dict, built whether read or not
    assert (event.key, event.value) == (message.key, message.value)


def test_raw_bytes_are_handed_through_and_the_headers_dict_built_when_read() -> None:
    event, message, headers, registry = asyncio.run(
        _decoded(RawSchema(key_type=bytes, value_type=bytes)))
    assert type(event) is RawEvent
    assert registry == []
    assert event.key is message.key and event.value is message.value
    assert event.message is message and not event.acked
    assert headers.reads == 0
    assert event.headers == {"content-type": b"application/json"}
    assert event.headers is event.headers and headers.reads == 1  # built once
