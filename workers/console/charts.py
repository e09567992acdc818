"""The console's charts as SVG geometry, computed here and drawn by the templates. Pure.

No chart library and no script: the server knows the numbers, and an SVG of a few dozen
shapes is smaller than any library. Colours are presentation attributes, not inline
styles, so the Content-Security-Policy needs no `unsafe-inline`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ACCEPTED = "#1a7f37"
# Rejection reasons, in the order they first appear; dark enough for text contrast.
PALETTE = ("#b42318", "#b54708", "#6941c6", "#175cd3", "#c11574", "#3e4784", "#7a2e0e",
           "#4e5ba6")


@dataclass(frozen=True)
class Spark:
    width: int
    height: int
    accepted: str  # polyline points
    rejected: str
    peak: int


def sparkline(series: Sequence[Sequence[int]], width: int = 120, height: int = 24) -> Spark:
    """Accepted and rejected per minute as two polylines over the hour."""
    peak = max((max(a, r) for a, r in series), default=0)
    step = width / max(1, len(series) - 1)

    def points(index: int) -> str:
        return " ".join(
            f"{i * step:.1f},{height - 1 - (pair[index] / peak * (height - 2) if peak else 0):.1f}"
            for i, pair in enumerate(series))

    return Spark(width, height, points(0), points(1), peak)


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str  # the tooltip: minute, reason, count


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: tuple[Bar, ...]
    legend: tuple[tuple[str, str, int], ...]  # (reason, colour, total)
    peak: int
    first: str  # the first and last minute, for the axis
    last: str


def reason_colour(reasons: Sequence[str]) -> dict[str, str]:
    colours = {"ok": ACCEPTED}
    for n, reason in enumerate(r for r in reasons if r != "ok"):
        colours[reason] = PALETTE[n % len(PALETTE)]
    return colours


def per_minute(minutes: Sequence[Mapping[str, object]], starts: Sequence[str],
               width: int = 720, height: int = 160) -> Chart:
    """Stacked bars of counts per reason for each minute in `starts` (oldest first);
    `minutes` is the usage summary's list of {minute, counts}."""
    by_minute: dict[str, dict[str, int]] = {}
    for m in minutes:
        counts = m.get("counts")
        if isinstance(counts, Mapping):
            by_minute[str(m.get("minute"))] = {str(r): int(n) for r, n in counts.items()}
    totals: dict[str, int] = {}
    for counts in by_minute.values():
        for reason, n in counts.items():
            totals[reason] = totals.get(reason, 0) + n
    colours = reason_colour(sorted(totals, key=lambda r: (-totals[r], r)))
    peak = max((sum(c.values()) for c in by_minute.values()), default=0)
    slot = width / max(1, len(starts))
    bars = []
    for i, minute in enumerate(starts):
        counts = by_minute.get(minute)
        if not counts or not peak:
            continue
        y = float(height)
        for reason in sorted(counts, key=lambda r: (r != "ok", r)):
            n = counts[reason]
            h = n / peak * (height - 4)
            y -= h
            bars.append(Bar(round(i * slot + 1, 1), round(y, 1), round(max(1.0, slot - 2), 1),
                            round(h, 1), colours[reason], f"{minute[11:16]} {reason}: {n}"))
    legend = tuple((r, colours[r], totals[r]) for r in colours if r in totals)
    return Chart(width, height, tuple(bars), legend, peak,
                 starts[0][11:16] if starts else "", starts[-1][11:16] if starts else "")
