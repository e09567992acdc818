"""The Faust app, its topics and its table. Nothing else lives here.

`faust -A workers.app worker -l info` runs a worker. Agents are discovered
from `workers.agents`.
"""

from __future__ import annotations

import faust

from workers import kafka_address, settings
from workers.kafka import unreadable
from workers.kafka.commit_before_revoke import CommitBeforeRevoke
from workers.paths import cache_dir

unreadable.install()  # before Faust builds its consumers
config = settings.load()
try:
    _bootstrap = kafka_address.bootstrap(config)
except kafka_address.NoBroker as exc:
    raise SystemExit(f"eventguard: {exc}") from None

# At-least-once: a worker that dies re-decides what it decided since its last offset commit.
# Faust's defaults commit every 2.8 s or 10,000 acks; right after a rebalance a worker
# catches up at ~2,500 events/s, so a kill then re-decided thousands (issue 8). A commit is
# one producer flush and one OffsetCommit: commit every 0.5 s or 1,000 acks, whichever first.
COMMIT_INTERVAL_S, COMMIT_EVERY = 0.5, 1000
# A SIGKILLed worker stays in the group until its session times out, and the rebalance
# that its restart starts waits for it: with Faust's 60 s every worker stopped deciding for
# a minute per kill (and a worker killed while joining got partitions for another minute).
# The consumer heartbeats from its own thread, so a busy event loop does not miss them.
SESSION_TIMEOUT_S, HEARTBEAT_S = 10.0, 1.0

# Faust's default is `<app id>-data/` in the working directory.
_datadir = cache_dir() / "faust" / config.app_id
_datadir.mkdir(parents=True, exist_ok=True)

app = faust.App(
    config.app_id,
    broker=kafka_address.faust_urls(_bootstrap),
    store="memory://",
    datadir=str(_datadir),
    key_serializer="raw",
    value_serializer="raw",
    autodiscover=["workers.agents"],
    origin="workers",
    consumer_auto_offset_reset="earliest",
    producer_acks=-1,
    producer_linger_ms=5,  # batch the per-event sends: many tiny produce requests cost more
    producer_max_request_size=config.max_record_bytes,
    topic_partitions=4,
    topic_replication_factor=config.replication_factor,  # Faust's own topics
    broker_commit_interval=COMMIT_INTERVAL_S,
    broker_commit_every=COMMIT_EVERY,
    broker_session_timeout=SESSION_TIMEOUT_S,
    broker_heartbeat_interval=HEARTBEAT_S,
)
app.transport.Consumer = CommitBeforeRevoke  # type: ignore[misc]  # before app.consumer exists


def _topic(name: str) -> faust.TopicT:
    return app.topic(config.topic(name), key_type=bytes, value_type=bytes)


raw_events = _topic("raw-events")
accepted_events = _topic("accepted-events")
rejected_events = _topic("rejected-events")
audit_log = _topic("audit-log")
auth_config = _topic("auth-config")
# The key table's changelog: validated auth-config records, read whole by every
# worker. Not a faust.Table: see docs/architecture.md, "The key table".
auth_state = _topic("auth-state")
nonces = _topic("nonces")  # nonces of signed requests (workers/agents/nonce_log.py)
