"""Every fix of faust-streaming's, mode-streaming's and aiokafka's internals, in one registry.

A fix overrides or copies a library function, so it is right only for the code it was
written against. `install()`, called by every process that uses Kafka (the worker's
`faust_app.build`, the ingest, `eventguard tail` and the decisions reader), refuses to
start when an installed version differs from PINNED or when the source of a library
function in FIXES differs from the digest it was checked against, and then installs the
monkeypatches. The subclasses given to Faust as app settings (EagerDrain, LeanMonitor,
PrometheusMonitor, QuietTableManager, LenientTable, RawSchema) are listed here too.

After an upgrade: read each fix's library function again, keep, change or drop the fix,
then `python -m workers.kafka.fixes` prints the digests of the installed sources.
docs/architecture.md ("Fixes of library internals") lists each fix with its two tests.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import inspect
from dataclasses import dataclass
from typing import Any

from workers.kafka import metadata_backoff, unreadable

PINNED = {"faust-streaming": "0.15.3", "mode-streaming": "0.7.1", "aiokafka": "0.14.0"}
NONE_UPSTREAM = "none found upstream"


@dataclass(frozen=True)
class Fix:
    ours: str  # where the fix lives; its docstring says what it fixes
    library: dict[str, str]  # "module:Qual.name" -> first 16 hex digits of sha256(source)
    upstream: str
    remove_when: str


FIXES = (
    Fix("workers.kafka.metadata_backoff:install",
        {"aiokafka.client:AIOKafkaClient._metadata_update": "06dc51ed3e0d38b8"},
        "https://github.com/aio-libs/aiokafka/pull/1014 (unmerged)",
        "aiokafka waits retry_backoff_ms after a failed metadata refresh"),
    Fix("workers.kafka.unreadable:install",
        {"aiokafka.consumer.fetcher:PartitionRecords.__init__": "8ec1c2ae6ea1af87"},
        NONE_UPSTREAM, "aiokafka hands on a record whose header name is not UTF-8"),
    Fix("workers.kafka.commit_before_revoke:CommitBeforeRevoke.on_partitions_revoked",
        {"faust.transport.consumer:Consumer.on_partitions_revoked": "d04b7ae72c6fc206"},
        "https://github.com/faust-streaming/faust/issues/502 (open)",
        "Faust commits acked offsets before it forgets revoked partitions"),
    Fix("workers.kafka.eager_drain:EagerDrain._drain_messages",
        {"faust.transport.consumer:Consumer._drain_messages": "44a2500309e83c63"},
        NONE_UPSTREAM + " (slow agents in general: robinhood/faust #563)",
        "Faust delivers a record without a task race per record"),
    Fix("workers.kafka.eager_drain:EagerDrain._wait_next_records",
        {"faust.transport.consumer:Consumer._wait_next_records": "6218e1969a636b3f",
         "faust.transport.consumer:Consumer.on_buffer_drop": "4b57e8a418d5ad9c"},
        NONE_UPSTREAM, "Faust fetches again as soon as a full stream buffer drains"),
    Fix("workers.kafka.eager_drain:_ConsumerThread._create_worker_consumer",
        {"faust.transport.drivers.aiokafka:AIOKafkaConsumerThread._create_worker_consumer":
         "c2701bfc3e6f6cad",
         "faust.transport.drivers.aiokafka:Consumer._new_consumer_thread": "0870ec53dea75083"},
        NONE_UPSTREAM, "Faust's fetch_max_wait_ms (1500) becomes a setting"),
    Fix("workers.kafka.eager_drain:_ConsumerThread._seek_to_committed",
        {"faust.transport.drivers.aiokafka:AIOKafkaConsumerThread.seek_to_committed":
         "775ab0adc4b052ab",
         "aiokafka.consumer.consumer:AIOKafkaConsumer.seek_to_committed": "f6cd85c8b70a4ccf"},
        NONE_UPSTREAM, "QuietRecovery goes (its drop is what this seek repairs)"),
    Fix("workers.kafka.quiet_recovery:QuietRecovery.on_recovery_completed",
        {"faust.tables.recovery:Recovery.on_recovery_completed": "6ef567acf072e46d",
         "faust.tables.manager:TableManager.recovery": "f0bf5de78b4c3d23"},
        NONE_UPSTREAM + " (related: robinhood/faust #580, PR #583 unmerged)",
        "Faust resumes stream partitions only with the flow stopped, after the seek"),
    Fix("workers.kafka.quiet_recovery:QuietRecovery._seek_offsets",
        {"faust.tables.recovery:Recovery._seek_offsets": "19598ca63d94d250"},
        NONE_UPSTREAM, "Faust seeks a standby partition without an offset to 0"),
    Fix("workers.kafka.quiet_recovery:QuietRecovery._watchdog",
        {"faust.tables.recovery:Recovery._slurp_changelogs": "7825c7e50f766d5a",
         "faust.app.base:App.on_started": "c03627f2dc44a1dd"},
        "https://github.com/robinhood/faust/pull/583 (unmerged; issue #580)",
        "Faust seeks a changelog partition back to the first record it did not apply"),
    Fix("workers.kafka.lenient_tables:LenientTable",
        {"faust.serializers.codecs:json._loads": "97ef26001fffb042",
         "faust.tables.base:Collection.apply_changelog_batch": "b980a78d3ae9b1e8"},
        NONE_UPSTREAM, "Faust's recovery skips a changelog record it cannot decode or apply"),
    Fix("workers.kafka.lean_monitor:LeanMonitor",
        {"faust.sensors.monitor:Monitor.on_message_in": "b2a9a9045b2f456c",
         "faust.sensors.monitor:Monitor.on_stream_event_in": "df6d2e5f6397ce44",
         "faust.sensors.monitor:Monitor.on_stream_event_out": "2d2277a6dbda754c",
         "faust.sensors.monitor:Monitor.on_message_out": "7c4054247cde96c3"},
        NONE_UPSTREAM, "Faust's Monitor keeps no per-event counters and timings"),
    Fix("workers.metrics.faust_sensor:PrometheusMonitor",
        {"faust.sensors.prometheus:FaustMetrics.create": "e46abed2a7774d13",
         "faust.sensors.prometheus:PrometheusMonitor": "69a1537022641050"},
        NONE_UPSTREAM, "Faust's Prometheus sensor updates no metric per event"),
    Fix("workers.faust_app:RawSchema",
        {"faust.serializers.schemas:Schema.compile": "d46eec5ce3195b2c",
         "faust.events:Event.__init__": "a1d3454dce427003"},
        NONE_UPSTREAM, "Faust decodes raw bytes and headers without per-record lookups"),
    Fix("workers.keys.table:KeyTable.send_changelog",
        {"faust.tables.base:Collection.send_changelog": "3dd3884e1b5fc0e1"},
        NONE_UPSTREAM + " (not a bug: a table write does not return its changelog future)",
        "a Faust table write returns the changelog record's future"),
)

_installed = False


def install() -> None:
    """Refuse to run on libraries the fixes were not checked against, then patch; idempotent."""
    global _installed
    if _installed:
        return
    problem = mismatch()
    if problem:
        raise SystemExit(f"eventguard: {problem}")
    unreadable.install()
    metadata_backoff.install()
    _installed = True


def mismatch() -> str | None:
    """One line that names what differs from what the fixes were checked against, or None."""
    pins = ", ".join(f"{name} {version}" for name, version in PINNED.items())
    found = []
    for name, pinned in PINNED.items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = "(none)"
        if installed != pinned:
            found.append(f"{name} {installed}")
    if found:
        return (f"{' and '.join(found)} {'are' if len(found) > 1 else 'is'} installed, but the "
                f"fixes in workers/kafka/fixes.py were checked against {pins}; re-check each fix "
                "there against the installed code and update PINNED and pyproject.toml, or "
                "install the pinned versions")
    changed = [(target, fix) for fix in FIXES for target, digest in fix.library.items()
               if source_digest(target) != digest]
    if changed:
        target, fix = changed[0]
        more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
        return (f"the source of {target}{more} is not the one the fix {fix.ours} in "
                f"workers/kafka/fixes.py was checked against (pinned: {pins}); re-check the "
                "fix and update its digest there, or reinstall the pinned versions")
    return None


def source_digest(target: str) -> str:
    """The first 16 hex digits of the sha256 of the source of `module:Qual.name`, as it is
    in the library (a monkeypatch made with functools.wraps is looked through)."""
    module, _, qualname = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        # The class's own attribute: not an inherited one, and a property as itself.
        obj = inspect.getattr_static(obj, part) if inspect.isclass(obj) else getattr(obj, part)
    if isinstance(obj, property):
        obj = obj.fget
    obj = getattr(obj, "fun", obj)  # a mode Service.task wraps its method
    source = inspect.getsource(inspect.unwrap(obj))
    return hashlib.sha256(source.encode()).hexdigest()[:16]


if __name__ == "__main__":  # after an upgrade: the digests of the installed sources
    for fix in FIXES:
        for target, digest in fix.library.items():
            now = source_digest(target)
            print(f"{now} {'ok' if now == digest else 'CHANGED'} {target}")
