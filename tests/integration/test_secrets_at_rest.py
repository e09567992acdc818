"""No plaintext secret in any topic: raw, outputs, audit, auth-config, the table's changelog."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from tests.integration.conftest import SHOP_ORIGIN, Env
from workers.auth import secrets
from workers.kafka import fixes


async def all_records(bootstrap: str, prefix: str) -> list[bytes]:
    # raw-events holds a record aiokafka cannot parse (test_bad_input.py), as a worker would.
    fixes.install()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefix)]
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(*names, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    blobs: list[bytes] = []
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=1500, max_records=10000)
            if not batches:
                return blobs
            for msgs in batches.values():
                for m in msgs:
                    blobs.append(b"".join([m.key or b"", m.value or b"",
                                           *(v or b"" for _, v in m.headers or ())]))
    finally:
        await consumer.stop()


def test_no_plaintext_secret_anywhere(env: Env) -> None:
    # Use every secret in every way a sender can, then scan every topic of this run.
    for name in ("web", "both_c"):
        s = env.secrets[name]
        env.post(f"/api/v1/event?token={s}", b'{"event_type":"page"}', {"Origin": SHOP_ORIGIN})
        env.post(f"/api.x?p_y={s}", b'[{"event_type":"page","api_key":"%s"}]' % s.encode())
    for name in ("backend", "both_s"):
        s = env.secrets[name]
        env.post("/api/v1/s2s/event", b'{"event_type":"t","api_key":"%s"}' % s.encode())
        env.post("/api/v1/s2s/event", b"{}", {"X-Auth-Token": s})
    blobs = asyncio.run(all_records(env.bootstrap, env.prefix))
    joined = b"\n".join(blobs)
    assert len(blobs) > 20
    for name, value in env.secrets.items():
        assert value.encode() not in joined, f"plaintext {name} secret found in a topic"
        assert value.encode() not in env.stack_logs(), f"plaintext {name} secret in a log"
    # The digests are what is stored: the key table knows the keys by digest.
    assert secrets.digest(env.secrets["web"]).encode() in joined
