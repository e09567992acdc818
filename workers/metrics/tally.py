"""Counts and histograms kept as plain Python numbers, read at scrape time.

prometheus_client's Histogram.observe takes a lock and walks its buckets in
Python (about 1-2 µs); at 15,000 events/s that is 2-3% of a worker. Here an
observation is one bisect and two additions. Nothing here imports
prometheus_client: `families.py` turns these into samples.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable


class Buckets:
    """A histogram: how many observations fell at or below each bound.

    `bounds` are in the exported unit (seconds); observations may come in a
    smaller one that the caller has at hand without a division (`per_unit`=1e6:
    microseconds). Only the scrape converts back.
    """

    __slots__ = ("bounds", "counts", "labels", "per_unit", "total")

    def __init__(self, bounds: Iterable[float], per_unit: float = 1.0) -> None:
        ordered = sorted(bounds)
        self.labels = tuple(repr(float(b)) for b in ordered)  # as Prometheus clients print
        self.bounds = tuple(round(b * per_unit, 9) for b in ordered)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one: above every bound
        self.total = 0.0
        self.per_unit = per_unit

    def observe(self, value: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bound's bucket (le=).
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """Prometheus buckets: (upper bound as text, observations at or below it)."""
        out, running = [], 0
        for label, n in zip(self.labels, self.counts, strict=False):
            running += n
            out.append((label, running))
        out.append(("+Inf", running + self.counts[-1]))
        return out

    @property
    def sum(self) -> float:
        return self.total / self.per_unit
