"""Key changes written continuously to auth-config, and requests that probe them.

`KeyChurn` cycles a pool of keys through add, disable, enable and revoke at `rate`
records a second, as any producer of auth-config may. `Probes` writes raw-events
records straight to every partition in turn, each with one of those keys, and keeps
their request ids; their decisions are judged against the Timeline afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time

from aiokafka import AIOKafkaProducer

from workers.auth import secrets
from workers.auth.keys import KeyRecord, SecretRef
from workers.keys import records

ACTIONS = ("add", "disable", "enable", "revoke")


class KeyChurn:
    def __init__(self, producer: AIOKafkaProducer, topic: str, n_keys: int = 100) -> None:
        self.producer, self.topic = producer, topic
        self.secrets = {f"churn-{i}": secrets.generate() for i in range(n_keys)}
        self.written = 0

    def record(self, key_id: str, action: str) -> tuple[bytes, bytes | None]:
        if action == "revoke":
            return f"key/{key_id}".encode(), None
        ref = SecretRef(secrets.digest(self.secrets[key_id]))
        return records.encode_key(KeyRecord(key_id, server_secrets=(ref,), source="soak",
                                            disabled=action == "disable"))

    async def publish(self, key_id: str, action: str) -> None:
        key, value = self.record(key_id, action)
        await self.producer.send_and_wait(self.topic, value, key=key)
        self.written += 1

    async def run(self, rate: float, stop: asyncio.Event) -> None:
        ids = list(self.secrets)
        steps = itertools.cycle([(k, a) for a in ACTIONS for k in ids])
        start, n = time.monotonic(), 0
        while not stop.is_set():
            key_id, action = next(steps)
            key, value = self.record(key_id, action)
            await self.producer.send(self.topic, value, key=key)  # not awaited: the rate
            self.written += 1
            n += 1
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)


class Probes:
    """One request a tick to the next raw-events partition, with a random churn key."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, partitions: list[int],
                 churn: KeyChurn) -> None:
        self.producer, self.topic, self.partitions, self.churn = (
            producer, topic, partitions, churn)
        self.sent: dict[str, str] = {}  # request id -> key id
        self._rng = random.Random(17)

    async def send(self, key_id: str, partition: int, secret: str | None = None) -> str:
        rid = f"probe-{len(self.sent)}-p{partition}"
        token = secrets.digest(secret or self.churn.secrets[key_id])
        headers = [("eg-request-id", rid.encode()), ("eg-endpoint", b"s2s"),
                   ("eg-token", token.encode())]
        await self.producer.send(self.topic, b'{"event_type":"soak"}', key=rid.encode(),
                                 partition=partition, headers=headers)
        self.sent[rid] = key_id
        return rid

    async def run(self, rate: float, stop: asyncio.Event) -> None:
        ids = list(self.churn.secrets)
        parts = itertools.cycle(self.partitions)
        while not stop.is_set():
            await self.send(self._rng.choice(ids), next(parts))
            await asyncio.sleep(1 / rate)
