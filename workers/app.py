"""The Faust app, its topics and its table. Nothing else lives here.

`faust -A workers.app worker -l info` runs a worker. Agents are discovered
from `workers.agents`.
"""

from __future__ import annotations

import faust

from workers import kafka_address, settings

config = settings.load()
try:
    _bootstrap = kafka_address.bootstrap(config)
except kafka_address.NoBroker as exc:
    raise SystemExit(f"eventguard: {exc}") from None

app = faust.App(
    "eventguard",
    broker=kafka_address.faust_urls(_bootstrap),
    store="memory://",
    key_serializer="raw",
    value_serializer="raw",
    autodiscover=["workers.agents"],
    origin="workers",
    # The ingest is the HTTP surface; per-worker web servers would clash on one host.
    web_enabled=False,
    consumer_auto_offset_reset="earliest",
    producer_acks=-1,
    topic_partitions=4,
)

raw_events = app.topic("raw-events", key_type=bytes, value_type=bytes)
accepted_events = app.topic("accepted-events", key_type=bytes, value_type=bytes)
rejected_events = app.topic("rejected-events", key_type=bytes, value_type=bytes)
audit_log = app.topic("audit-log", key_type=bytes, value_type=bytes)
auth_config = app.topic("auth-config", key_type=bytes, value_type=bytes)

# Validated auth-config records by record key (`key/<id>`, `policy/<name>`).
# One partition, like auth-config. Every worker reads its changelog whole
# (workers/agents/key_view.py) instead of relying on GlobalTable.
auth_state = app.Table("auth-state", key_type=bytes, value_type=bytes, partitions=1)
