"""Folding a batch of audit-log records into per-key, per-minute deltas.

Pure: no Faust, no Kafka. The worker's `tally_usage` agent feeds it a batch and sends
the deltas (a few per batch instead of one record per decision) to the usage table.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

# Decisions with no key id, or one the key table does not hold, count here. A sender
# chooses what it claims to be; only key ids the key table holds may become table keys,
# so garbage cannot grow the table.
UNKNOWN = "(unknown)"
MINUTE_CHARS = len("2026-11-27T11:00")
MAX_REASON = 64  # reason codes are short; a longer string is not one of ours
# Anyone who can write to the deltas topic can write any number. Faust writes the table's
# changelog with orjson, which refuses integers past 64 bits: a delta of 2**64 - 1 added to
# another one crashed the usage agent on every restart. One delta is at most one worker's
# decisions of a minute; a total stops growing at 2**53, which every JSON reader still
# reads exactly (a dashboard's JavaScript too).
MAX_DELTA = 10**9
MAX_TOTAL = 2**53
MAX_REASONS = 64  # reasons in one delta; we have about 30
# The last rejections kept per key id, for the console's key page. Only fields that never
# hold a secret (the worker's details never do); each string is cut, as any client wrote it.
REJECTIONS = 20
REJECTION_FIELDS = ("ts", "reason", "detail", "origin", "event_type", "request_id")
MAX_FIELD = 200


def bucket(key_id: object, known: Callable[[str], bool]) -> str:
    """The table key a decision counts under: its key id if the key table holds it."""
    if isinstance(key_id, str) and key_id != UNKNOWN and known(key_id):
        return key_id
    return UNKNOWN


def minute_of(ts: object, fallback_ms: int) -> str:
    """`2026-11-27T11:00` for an audit `ts` (ISO 8601 UTC); the record's own timestamp
    when `ts` is not one. A prefix, not a parse: this runs once per decision."""
    if (isinstance(ts, str) and len(ts) > MINUTE_CHARS and ts[10] == "T"
            and ts[13] == ":" and ts[:4].isdigit()):
        return ts[:MINUTE_CHARS]
    return datetime.fromtimestamp(fallback_ms / 1000, UTC).isoformat()[:MINUTE_CHARS]


def minute_epoch(minute: str) -> float:
    """Seconds since the epoch at the start of `minute` (`YYYY-MM-DDTHH:MM`)."""
    return datetime.fromisoformat(minute + ":00+00:00").timestamp()


class Tally:
    """Counts per (bucket, minute, reason), and the latest accepted and rejected `ts`
    per bucket, over one batch of audit records."""

    __slots__ = ("counts", "known", "last", "rejections")

    def __init__(self, known: Callable[[str], bool]) -> None:
        self.known = known
        self.counts: dict[tuple[str, str], dict[str, int]] = {}
        self.last: dict[str, list[str | None]] = {}  # bucket -> [accepted, rejected]
        # bucket -> the last rejected records read, shaped only when the deltas are made
        self.rejections: dict[str, deque[tuple[dict[str, Any], str]]] = {}

    def add(self, value: bytes | None, timestamp_ms: int) -> None:
        try:
            record = orjson.loads(value or b"")
        except orjson.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            record = {}  # still a decision on audit-log: counted, under UNKNOWN
        key = bucket(record.get("key_id"), self.known)
        reason = record.get("reason")
        if not isinstance(reason, str) or len(reason) > MAX_REASON:
            reason = "other"
        ts = record.get("ts")
        minute = minute_of(ts, timestamp_ms)
        counts = self.counts.setdefault((key, minute), {})
        counts[reason] = counts.get(reason, 0) + 1
        stamp = ts if isinstance(ts, str) and minute == ts[:MINUTE_CHARS] else minute + ":00Z"
        last = self.last.setdefault(key, [None, None])
        slot = 0 if record.get("decision") == "accepted" else 1
        if last[slot] is None or stamp > str(last[slot]):
            last[slot] = stamp
        if slot == 1:
            kept = self.rejections.get(key)
            if kept is None:
                kept = self.rejections[key] = deque(maxlen=REJECTIONS)
            kept.append((record, stamp))

    def deltas(self) -> list[tuple[bytes, bytes]]:
        """(key, value) records for the usage deltas topic, keyed by the JSON of the bucket
        (what the usage table's changelog and Faust's router hash), one per bucket and
        minute; the latest times ride on each bucket's last minute."""
        latest: dict[str, str] = {}
        for key, minute in self.counts:
            if minute > latest.get(key, ""):
                latest[key] = minute
        out = []
        for (key, minute), counts in sorted(self.counts.items()):
            delta: dict[str, Any] = {"minute": minute, "counts": counts}
            if latest[key] == minute:
                delta["last_accepted"], delta["last_rejected"] = self.last[key]
                if key in self.rejections:
                    delta["rejections"] = latest_rejections(
                        [rejection(r, stamp) for r, stamp in self.rejections[key]])
            out.append((orjson.dumps(key), orjson.dumps(delta)))
        return out

    def __len__(self) -> int:
        return len(self.counts)


def parse_delta(value: bytes | None) -> dict[str, Any] | None:
    """A delta record as `Tally.deltas` writes it, or None when it is not one."""
    try:
        delta = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(delta, dict) or not isinstance(delta.get("counts"), dict):
        return None
    minute = delta.get("minute")
    if not isinstance(minute, str) or len(minute) != MINUTE_CHARS:
        return None
    try:
        delta["start"] = minute_epoch(minute)
    except ValueError:
        return None
    counts = delta["counts"]
    if len(counts) > MAX_REASONS or not all(
            isinstance(k, str) and len(k) <= MAX_REASON and type(v) is int and 0 < v <= MAX_DELTA
            for k, v in counts.items()):
        return None
    return delta


def add_counts(old: dict[str, int] | None, more: dict[str, int]) -> dict[str, int]:
    merged = dict(old or {})
    for reason, n in more.items():
        merged[reason] = min(merged.get(reason, 0) + n, MAX_TOTAL)
    return merged


def later_times(old: dict[str, Any] | None, delta: dict[str, Any]) -> dict[str, Any] | None:
    """The last-seen record updated with a delta's times and rejections; None when nothing
    changed."""
    merged = dict(old or {"last_accepted": None, "last_rejected": None})
    changed = False
    for field in ("last_accepted", "last_rejected"):
        new = delta.get(field)
        if isinstance(new, str) and (merged.get(field) is None or new > merged[field]):
            merged[field] = new
            changed = True
    more = delta.get("rejections")
    if isinstance(more, list) and more:
        before = merged.get("rejections")
        kept = latest_rejections([*(before if isinstance(before, list) else []), *more])
        if kept != before:
            merged["rejections"] = kept
            changed = True
    return merged if changed else None


def rejection(record: dict[str, Any], stamp: str) -> dict[str, str | None]:
    """What the console shows of one rejected decision: short strings, nothing else."""
    out: dict[str, str | None] = {}
    for name in REJECTION_FIELDS:
        value = stamp if name == "ts" else record.get(name)
        out[name] = value[:MAX_FIELD] if isinstance(value, str) else None
    return out


def latest_rejections(items: list[Any]) -> list[dict[str, str | None]]:
    """The REJECTIONS latest of `items`, newest first; anything not shaped as `rejection`
    writes it (the deltas topic is writable by others) is dropped."""
    good = [{n: (v[:MAX_FIELD] if isinstance(v := item.get(n), str) else None)
             for n in REJECTION_FIELDS}
            for item in items if isinstance(item, dict) and isinstance(item.get("ts"), str)]
    unique = {(r["ts"], r["request_id"], r["reason"], r["event_type"]): r for r in good}
    return sorted(unique.values(), key=lambda r: str(r["ts"]), reverse=True)[:REJECTIONS]
