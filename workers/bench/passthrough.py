"""The baseline: a plain aiokafka consume -> produce loop with no decision logic.

It copies each raw-events record to two topics, as the worker writes a decision
and an audit record per event, and commits after the copies are acknowledged
(the worker's at-least-once contract). Run as a process of its own, like a worker:
`python -m workers.bench.passthrough BOOTSTRAP PREFIX`.
"""

from __future__ import annotations

import asyncio
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from workers import kafka_security


async def run(bootstrap: str, prefix: str) -> None:
    consumer = AIOKafkaConsumer(
        prefix + "raw-events", **kafka_security.options(),
        bootstrap_servers=bootstrap, group_id=prefix + "passthrough",
        enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=50,
    )
    producer = AIOKafkaProducer(**kafka_security.options(),
                                bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=2, max_request_size=4 * 1024 * 1024)
    await consumer.start()
    await producer.start()
    assigned = False
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=1000)
            if not assigned and consumer.assignment():
                assigned = True
                print("passthrough: assigned", flush=True)  # bench pipeline waits for it
            pending = []
            for msgs in batches.values():
                for m in msgs:
                    for topic in ("accepted-events", "audit-log"):
                        pending.append(await producer.send(prefix + topic, m.value, key=m.key))
            if pending:
                await asyncio.gather(*pending)
                await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1], sys.argv[2]))
