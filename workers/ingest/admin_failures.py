"""A brake on guessing the admin token: failed authentications per client address.

Pure: the clock is handed in. A client with `limit` failures inside `window_s` gets 429
until the oldest of them leaves the window; a right token is never counted."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

LIMIT = 10
WINDOW_S = 60.0
MAX_ADDRESSES = 10_000  # remembered; the oldest are forgotten first


class AdminFailures:
    def __init__(self, limit: int = LIMIT, window_s: float = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic,
                 max_addresses: int = MAX_ADDRESSES) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self.max_addresses = max_addresses
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def wait_s(self, address: str) -> float | None:
        """Seconds until `address` may try again, or None when it may now."""
        times = self._recent(address)
        if len(times) < self.limit:
            return None
        return max(0.0, times[0] + self.window_s - self.clock())

    def failed(self, address: str) -> int:
        """Count a failure; returns the failures of `address` inside the window."""
        times = self._recent(address)
        times.append(self.clock())
        self._seen[address] = times
        self._seen.move_to_end(address)
        while len(self._seen) > self.max_addresses:
            self._seen.popitem(last=False)
        return len(times)

    def _recent(self, address: str) -> deque[float]:
        times = self._seen.get(address, deque())
        cutoff = self.clock() - self.window_s
        while times and times[0] <= cutoff:
            times.popleft()
        return times
