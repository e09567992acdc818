"""How eventguard builds a Faust app: one place for the settings that the worker
(workers/app.py) and the bare Faust baseline of `bench pipeline`
(workers/bench/faust_passthrough.py) share, so the baseline measures the same Faust.
"""

from __future__ import annotations

import gc
from typing import Any

import faust

from workers import kafka_address, log_format, log_limits
from workers.kafka import fixes
from workers.kafka.eager_drain import EagerDrain
from workers.kafka.lean_monitor import LeanMonitor
from workers.kafka.quiet_recovery import QuietTableManager
from workers.metrics.faust_sensor import PrometheusMonitor
from workers.paths import cache_dir
from workers.settings import Settings

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
# The agents take raw-events in batches of up to BATCH events (`take_events`): a batch is
# acked, so committable, only after it was handled.
BATCH, BATCH_WAIT_S = 500, 0.005
# One record batch per topic-partition holds a whole agent batch's records for it (Faust:
# 16 KiB), under the topics' max.message.bytes (audit-log: the broker's 1 MiB default).
PRODUCER_BATCH_BYTES = 256 * 1024
# Events fetched ahead per stream (Faust: 4096). A fetch returns up to 1 MiB per partition,
# so a full buffer made the next deliveries wait and the fetcher pause; 16384 measured
# 10-12k -> 12-13k events/s (32768 no better). Unacked, so not committed: no more
# re-decisions after a crash. Memory: 16384 events in flight (~30 MB at 1-2 KB each).
STREAM_BUFFER = 16384
# Each event allocates a few dozen short-lived objects; with Python's default gen-0
# threshold of 700 the collector ran ~120 times a second and scanned the stream buffer's
# thousands of live events each time: ~8% of a worker's time. Freezing what start-up built
# and collecting every 50,000 allocations cut that to ~2% (bench pipeline: ~+6%).
GC_THRESHOLDS = (50_000, 20, 100)


class RawEvent(faust.Event):
    """A Faust event that builds the headers dict only when asked: Faust's copies
    every record's header list into a dict, and the agents read `message.headers`."""

    __slots__ = ("_header_list",)

    def __init__(self, app: Any, key: Any, value: Any, headers: Any, message: Any) -> None:
        self.app, self.key, self.value, self.message = app, key, value, message
        self._header_list = headers
        self.acked = False

    @property
    def headers(self) -> Any:
        if not isinstance(self._header_list, dict):
            self._header_list = dict(self._header_list or ())
        return self._header_list

    @headers.setter
    def headers(self, value: Any) -> None:
        self._header_list = value


class RawSchema(faust.Schema):  # type: ignore[type-arg]
    """A record's key and value bytes as they are, what `key_type=bytes, value_type=bytes`
    with the raw serializer give, without a trip through Faust's serializer registry
    for each record (about 8% of a worker's event loop), or through `app.conf.Event`
    (its settings lookup is about 2%).

    Replaces faust.Schema.compile; its RawEvent copies faust.Event.__init__ without the
    headers dict. Upstream: no issue found (a cost, not a bug). Remove when Faust decodes
    raw topics without its serializer registry and headers dict per record."""

    def compile(self, app: Any, *, on_key_decode_error: Any = None,
                on_value_decode_error: Any = None, default_propagate: bool = False) -> Any:
        async def decode(message: Any, *, propagate: bool = default_propagate) -> Any:
            return RawEvent(app, message.key, message.value, message.headers, message)

        return decode


def raw_topic(app: faust.App, name: str) -> faust.TopicT:
    """A topic whose events are the records' bytes."""
    return app.topic(name, schema=RawSchema(key_type=bytes, value_type=bytes))


def build(config: Settings, bootstrap: str, app_id: str, **extra: Any) -> faust.App:
    """A Faust app with eventguard's settings; `extra` adds app arguments (autodiscover...)."""
    fixes.install()  # checks the libraries' versions and sources; before Faust's consumers
    log_limits.limit_own_loggers()
    logs = log_format.chosen()
    if logs == log_format.JSON:
        log_format.everything_through_logging()
    # Faust's default is `<app id>-data/` in the working directory.
    datadir = cache_dir() / "faust" / app_id
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        app_id,
        broker=kafka_address.faust_urls(bootstrap),
        broker_credentials=config.kafka_security.faust_credentials(),
        store="memory://",
        datadir=str(datadir),
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger_ms=5,  # batch the per-event sends: many tiny produce requests cost more
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        stream_buffer_maxsize=STREAM_BUFFER,
        producer_max_request_size=config.max_record_bytes,
        topic_partitions=4,
        topic_replication_factor=config.replication_factor,  # Faust's own topics
        broker_commit_interval=COMMIT_INTERVAL_S,
        broker_commit_every=COMMIT_EVERY,
        broker_session_timeout=SESSION_TIMEOUT_S,
        broker_heartbeat_interval=HEARTBEAT_S,
        # Either way without Faust's per-event hooks (lean_monitor.py, faust_sensor.py).
        # These classes override Faust's internals: each is listed in workers/kafka/fixes.py.
        Monitor=PrometheusMonitor if config.metrics_enabled else LeanMonitor,
        # /table serves table values: the key table's digests and sealed secrets. /router
        # serves the cluster's layout; nothing here routes table reads between workers.
        web_tables_enabled=False,
        web_router_enabled=False,
        TableManager=QuietTableManager,  # streams resume only once sought (quiet_recovery.py)
        logging_config=log_format.faust_logging_config(logs),
        **extra,
    )
    app.transport.Consumer = EagerDrain  # type: ignore[misc]  # before app.consumer exists
    app.task(_lean_gc)
    return app


async def _lean_gc() -> None:
    gc.collect()
    gc.freeze()  # modules, classes, settings: never garbage, no need to scan them again
    gc.set_threshold(*GC_THRESHOLDS)
