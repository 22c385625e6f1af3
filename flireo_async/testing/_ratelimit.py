"""Server-side rate limiting as the API documents it: fixed 60-second windows per key.

A key's window opens with its first request and lasts 60 wall-clock seconds; the next request
after that opens a new one. (Windows are not aligned to the minute so that a short test burst
never straddles a boundary by accident.) The window is never scaled by the fake's ``speed``:
rate limits are about real time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

__all__ = ["FixedWindowLimiter", "Verdict"]


@dataclass(frozen=True)
class Verdict:
    """The outcome of one request against a limit, and the headers that describe it."""

    allowed: bool
    limit: int
    remaining: int
    reset: int
    """Unix seconds at which the window ends."""
    retry_after: int
    """Whole seconds until the window ends (at least 1); meaningful when not allowed."""

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


class FixedWindowLimiter:
    """At most ``limit`` requests per ``window`` seconds for each key."""

    def __init__(self, limit: int, window: float = 60.0, *, clock: Callable[[], float] = time.time) -> None:
        if limit < 1:
            raise ValueError("a rate limit must allow at least one request per window")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._windows: dict[Hashable, tuple[float, int]] = {}

    def hit(self, key: Hashable) -> Verdict:
        """Count one request for ``key`` (refused requests count too, as on the real API)."""
        now = self._clock()
        start, used = self._windows.get(key, (now, 0))
        if now >= start + self.window:
            start, used = now, 0
        used += 1
        self._windows[key] = (start, used)
        end = start + self.window
        return Verdict(
            allowed=used <= self.limit,
            limit=self.limit,
            remaining=max(0, self.limit - used),
            reset=math.ceil(end),
            retry_after=max(1, math.ceil(end - now)),
        )

    def reset(self) -> None:
        """Forget every window (all keys get their full limit back)."""
        self._windows.clear()
