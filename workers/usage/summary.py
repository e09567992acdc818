"""What `keys usage` and the admin API show: one key's usage over the last hour.

Pure: the worker hands in the table's values; times are ISO 8601 UTC strings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from workers.auth.reasons import Reason

WINDOW_S = 60  # the usage table's tumbling windows
SPAN_S = 3600  # how far back usage is kept and shown


def minute_starts(now: float, window_s: int = WINDOW_S, span_s: int = SPAN_S) -> list[float]:
    """The starts of the windows in the last `span_s`, the current one included, oldest
    first."""
    current = (now // window_s) * window_s
    count = span_s // window_s
    return [current - window_s * i for i in range(count - 1, -1, -1)]


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def summary(key_id: str, last: Mapping[str, Any] | None,
            window: Callable[[float], Mapping[str, int] | None], now: float) -> dict[str, Any]:
    """The usage of `key_id`: last accepted and rejected decision times, and counts per
    reason in each minute of the last hour that has any (oldest first), with totals.

    `window(start)` returns the counts of the window that starts at `start`, or None."""
    minutes = []
    totals: dict[str, int] = {}
    series = []
    for start in minute_starts(now):
        counts = window(start)
        series.append(split(counts or {}))
        if not counts:
            continue
        minutes.append({"minute": iso(start), "counts": dict(sorted(counts.items()))})
        for reason, n in counts.items():
            totals[reason] = totals.get(reason, 0) + n
    starts = minute_starts(now)
    seen = last or {}
    rejections = seen.get("rejections")
    return {
        "key_id": key_id,
        "last_accepted": (last or {}).get("last_accepted"),
        "last_rejected": (last or {}).get("last_rejected"),
        "since": iso(starts[0]),
        "window_s": WINDOW_S,
        "total": sum(totals.values()),
        "totals": dict(sorted(totals.items())),
        "minutes": minutes,
        # [accepted, rejected] per minute, oldest first, every minute of the hour: the
        # console's sparklines
        "series": series,
        "rejections": rejections if isinstance(rejections, list) else [],
    }


def split(counts: Mapping[str, int]) -> list[int]:
    """[accepted, rejected] of one minute's counts per reason."""
    accepted = sum(n for reason, n in counts.items() if _accepted(reason))
    return [accepted, sum(counts.values()) - accepted]


def _accepted(reason: str) -> bool:
    return reason in _ACCEPTED


_ACCEPTED = frozenset(r.value for r in Reason if r.accepted)


def overview(summaries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One line per key for `keys usage` without an id: the per-minute counts left out."""
    return [{k: v for k, v in s.items() if k not in ("minutes", "rejections")}
            for s in sorted(summaries, key=lambda s: str(s.get("key_id")))]


def lines(s: Mapping[str, Any]) -> list[str]:
    """A usage summary as text, for `eventguard keys usage ID`."""
    out = [f"key {s['key_id']}",
           f"  last accepted  {s.get('last_accepted') or '-'}",
           f"  last rejected  {s.get('last_rejected') or '-'}",
           f"  since {s['since']}: {s['total']} decisions"
           + (f" ({_counts(s['totals'])})" if s["totals"] else "")]
    for m in s.get("minutes", []):
        out.append(f"  {m['minute']}  {_counts(m['counts'])}")
    return out


def row(s: Mapping[str, Any]) -> str:
    """One key's line for `eventguard keys usage` without an id."""
    return (f"{s['key_id']:<20} last_accepted={s.get('last_accepted') or '-'}  "
            f"last_rejected={s.get('last_rejected') or '-'}  last_hour={s['total']}"
            + (f" ({_counts(s['totals'])})" if s["totals"] else ""))


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{reason}={n}" for reason, n in sorted(counts.items()))
