"""The usage process: a Faust app of its own for per-key usage. Nothing else lives here.

`eventguard usage` (or `faust -A workers.usage_app worker -l info`) runs it. It is not
the worker: its own app id (`<app id>-usage`), consumer group, tables and web server, so
a stall of the usage tables' changelog recovery, or a usage process that is down, can
never stop a decision (docs/architecture.md, "The usage process"). Agents are discovered
from `workers.usage_agents`.

audit-log (keyed by request id) -> tally (usage_agents/tally.py) -> `deltas`, keyed by key
id -> count_usage (usage_agents/counts.py) -> tables `counts` and `last`, co-partitioned
with `deltas`, so each key id's counts live on the usage process that owns its partition.
"""

from __future__ import annotations

import sys

from workers import kafka_address, settings
from workers.faust_app import build
from workers.kafka.lenient_tables import LenientTable
from workers.keys.store import TopicReader
from workers.keys.table import changelog_topic

try:  # a config mistake: one line and exit code 2, under `faust -A` too
    config = settings.load()
    bootstrap = kafka_address.bootstrap(config)
except (settings.ConfigError, kafka_address.NoBroker) as exc:
    sys.stderr.write(f"eventguard: {exc}\n")
    raise SystemExit(2) from None

APP_ID = config.usage_app_id
# The tables read their changelogs leniently: a record that is not JSON must not stop
# recovery for good (workers/kafka/lenient_tables.py). web_port: beside a worker's 6066.
app = build(config, bootstrap, APP_ID, autodiscover=["workers.usage_agents"],
            origin="workers.usage_agents", Table=LenientTable, web_port=config.usage_web_port)

AUDIT_LOG = config.topic("audit-log")  # read by the tally's own aiokafka consumer
USAGE_PARTITIONS = 4
deltas = app.topic(f"{APP_ID}-deltas", key_type=bytes, value_type=bytes,
                   partitions=USAGE_PARTITIONS, internal=True)
counts = app.Table(
    "counts", default=dict, partitions=USAGE_PARTITIONS,
    # Faust gives a windowed changelog `retention.ms` = expires; without a shorter segment
    # Kafka deletes nothing until the 7-day segment rolls, and recovery reads it all.
    extra_topic_configs={"segment.ms": "600000"},
    help="reason -> decisions, per key id and minute",
).tumbling(60, expires=3600)
last = app.Table("last", default=None, partitions=USAGE_PARTITIONS,
                 help="last accepted and rejected decision time per key id")

# Which key ids the key table holds, so that only those become table keys. Read from the
# key table's changelog by a group-less consumer (no Faust table, no recovery): the worker
# writes it, and this process only follows it (usage_agents/tally.py).
known_keys = TopicReader(changelog_topic(config.app_id))
