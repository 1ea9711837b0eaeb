"""Requests per key over a sliding window, in memory (each replica enforces its own)."""

from __future__ import annotations

import time
from collections import defaultdict, deque


class RateLimiter:
    def __init__(self, limit: int, window_s: float = 60.0):
        self.limit = limit
        self.window_s = window_s
        self._seen: dict[str, deque] = defaultdict(deque)

    def admit(self, key: str) -> float | None:
        """None when `key` may go ahead now (and it is counted), else the seconds until it may."""
        if self.limit <= 0:
            return None
        now = time.monotonic()
        seen = self._seen[key]
        while seen and now - seen[0] >= self.window_s:
            seen.popleft()
        if len(seen) >= self.limit:
            return max(0.05, self.window_s - (now - seen[0]))
        seen.append(now)
        return None
