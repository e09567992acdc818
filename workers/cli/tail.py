"""`eventguard tail TOPIC`: print records as JSON lines."""

from __future__ import annotations

import sys
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from workers import kafka_security, topic_access
from workers.kafka import fixes


def as_json(msg: Any) -> bytes:
    """One JSON line per record, whatever the record holds: a value that is not JSON is
    printed as text."""
    try:
        value: Any = orjson.loads(msg.value) if msg.value is not None else None
    except orjson.JSONDecodeError:
        value = _text(msg)
    line = {
        "topic": msg.topic, "partition": msg.partition, "offset": msg.offset,
        "key": msg.key.decode("utf-8", "replace") if msg.key else None,
        "headers": {k: v.decode("utf-8", "replace") if v is not None else None
                    for k, v in (msg.headers or ())},
        "value": value,
    }
    try:
        return orjson.dumps(line)
    except TypeError:  # JSON orjson reads but does not write: nested past 254 levels
        return orjson.dumps({**line, "value": _text(msg)})


def _text(msg: Any) -> str | None:
    return msg.value.decode("utf-8", "replace") if msg.value is not None else None


async def tail(bootstrap: str, topic: str, from_beginning: bool, limit: int, idle_s: float) -> int:
    # A record aiokafka cannot parse (a header name that is not UTF-8) is printed as a
    # placeholder with an `x-eventguard-unreadable` header, instead of ending the command.
    fixes.install()
    # Asked first: subscribed to a missing topic, aiokafka logs an error every 0.1 s for
    # its 40 s request timeout before it gives up. A refused user: one line (cli/main.py).
    if await topic_access.missing(bootstrap, [topic]):
        print(f"eventguard: no topic {topic} on {bootstrap}; `eventguard topics apply` "
              "creates eventguard's topics (with the prefix of EVENTGUARD_TOPIC_PREFIX)",
              file=sys.stderr)
        return 2
    consumer = AIOKafkaConsumer(
        **kafka_security.options(),
        bootstrap_servers=bootstrap, group_id=None,
        auto_offset_reset="earliest" if from_beginning else "latest",
    )
    await consumer.start()
    consumer.subscribe([topic])
    seen = 0
    last = time.monotonic()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for msg in records:
                    sys.stdout.buffer.write(as_json(msg) + b"\n")
                    seen += 1
                    if limit and seen >= limit:
                        return 0
            sys.stdout.flush()
            if batches:
                last = time.monotonic()
            elif idle_s and time.monotonic() - last > idle_s:
                return 0
    finally:
        await consumer.stop()
