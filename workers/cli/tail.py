"""`eventguard tail TOPIC`: print records as JSON lines."""

from __future__ import annotations

import sys
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer


def as_json(msg: Any) -> bytes:
    try:
        value: Any = orjson.loads(msg.value) if msg.value is not None else None
    except orjson.JSONDecodeError:
        value = msg.value.decode("utf-8", "replace")
    return orjson.dumps({
        "topic": msg.topic, "partition": msg.partition, "offset": msg.offset,
        "key": msg.key.decode("utf-8", "replace") if msg.key else None,
        "headers": {k: v.decode("utf-8", "replace") for k, v in (msg.headers or ())},
        "value": value,
    })


async def tail(bootstrap: str, topic: str, from_beginning: bool, limit: int, idle_s: float) -> int:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None,
        auto_offset_reset="earliest" if from_beginning else "latest",
    )
    await consumer.start()
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
