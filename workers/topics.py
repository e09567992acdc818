"""The topic specs in topics/*.yaml, and `eventguard topics apply`.

Apply is idempotent: it creates missing topics, adds partitions when a spec
asks for more, and sets configs that differ. It never deletes or shrinks, and
never changes an existing topic's replication factor (it says when it differs).
Every topic gets `min.insync.replicas` from the settings: with acks=all, a
write is acknowledged only once that many replicas have it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.admin.new_partitions import NewPartitions

from workers import kafka_security
from workers.paths import project_root


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str]


def topics_dir() -> Path:
    root = project_root()
    return root / "topics" if root else Path("topics")


def load_specs(folder: Path | None = None) -> list[TopicSpec]:
    specs = []
    for path in sorted((folder or topics_dir()).glob("*.yaml")):
        doc: Any = yaml.safe_load(path.read_text())
        specs.append(TopicSpec(
            name=str(doc["name"]),
            partitions=int(doc.get("partitions", 1)),
            config={str(k): str(v) for k, v in (doc.get("config") or {}).items()},
        ))
    return specs


async def apply(bootstrap: str, specs: list[TopicSpec], prefix: str = "",
                replication_factor: int = 1, min_insync_replicas: int | None = None
                ) -> list[str]:
    """Make the cluster match the specs; returns one line per topic saying what it did.

    `min_insync_replicas` defaults to min(2, replication_factor), as in the settings."""
    min_isr = str(min_insync_replicas or min(2, replication_factor))
    specs = [TopicSpec(prefix + s.name, s.partitions,
                       {**s.config, "min.insync.replicas": min_isr}) for s in specs]
    admin = AIOKafkaAdminClient(**kafka_security.options(),
                                bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            await admin.create_topics([
                NewTopic(s.name, s.partitions, replication_factor, topic_configs=s.config)
                for s in missing
            ])
            await _wait_for_leaders(admin, [s.name for s in missing])
        lines = [f"{s.name}: created ({s.partitions} partitions)" for s in missing]
        for spec in specs:
            if spec in missing:
                continue
            lines.append(f"{spec.name}: " + await _reconcile(admin, spec, replication_factor))
        return lines
    finally:
        await admin.close()


async def delete_prefixed(bootstrap: str, prefix: str) -> int:
    """Delete every topic whose name starts with `prefix`; returns how many.

    Benchmarks and tests make their topics under a prefix of their own; left
    behind, a day of runs gave the dev broker 10,000 partitions, more than it
    loads within `eventguard kafka start`'s wait."""
    admin = AIOKafkaAdminClient(**kafka_security.options(),
                                bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
        return len(names)
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str],
                            timeout_s: float = 30.0) -> None:
    # A new partition has no leader for a moment; clients that arrive then log
    # NotLeaderForPartition errors that look alarming and mean nothing.
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described = await admin.describe_topics(names)
        if all(p["leader"] >= 0 for t in described for p in t["partitions"]) and all(
                t["partitions"] for t in described):
            return
        await asyncio.sleep(0.1)


async def _reconcile(admin: AIOKafkaAdminClient, spec: TopicSpec, replication_factor: int
                     ) -> str:
    described = await admin.describe_topics([spec.name])
    have = len(described[0]["partitions"])
    changes = []
    copies = {len(p["replicas"]) for p in described[0]["partitions"]}
    if copies and copies != {replication_factor}:
        # Moving replicas is a reassignment plan (kafka-reassign-partitions), not a setting.
        changes.append(f"replication factor {'/'.join(map(str, sorted(copies)))}, config says "
                       f"{replication_factor} (left as is)")
    if have < spec.partitions:
        await admin.create_partitions({spec.name: NewPartitions(spec.partitions)})
        changes.append(f"partitions {have} -> {spec.partitions}")
    elif have > spec.partitions:
        changes.append(f"has {have} partitions, spec says {spec.partitions} (left as is)")
    resource = ConfigResource(ConfigResourceType.TOPIC, spec.name)
    response = await admin.describe_configs([resource])
    current = {entry[0]: entry[1] for entry in response[0].resources[0][4]}
    differs = {k: v for k, v in spec.config.items() if current.get(k) != v}
    if differs:
        # Non-incremental alter replaces all overrides, so send the whole spec.
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, spec.name,
                                                  configs=spec.config)])
        changes.append("config " + ", ".join(f"{k}={v}" for k, v in sorted(differs.items())))
    return "; ".join(changes) if changes else "ok"
