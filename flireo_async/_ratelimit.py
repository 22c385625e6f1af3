"""Client-side pacing: a token bucket shared by every task of a client, plus per-key windows.

The API allows 100 requests per minute per key and 10 control commands per minute per call.
Pacing on our side means the server's limit is rarely hit; when it is, every task of the client
waits out the same ``Retry-After`` instead of hammering the API one by one.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Hashable, Mapping

from ._response import RateLimitState

__all__ = ["TokenBucket", "SlidingWindow", "KeyedWindows"]


class TokenBucket:
    """At most ``per_minute`` requests in any 60-second window, with a small burst.

    The burst is 5 % of the limit and the refill rate is the rest, spread over the minute, so
    that a fixed or sliding server window of 60 s never sees more than ``per_minute``.
    ``per_minute=None`` turns pacing off; cool-downs after a 429 still apply.
    Waiters are served in arrival order.
    """

    def __init__(self, per_minute: int | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute is not None and per_minute < 1:
            raise ValueError("rate_limit must be a positive number of requests per minute or None")
        self._clock = clock
        self._lock = asyncio.Lock()
        self._blocked_until = 0.0
        self.state = RateLimitState(None, None, None)
        self._configure(per_minute)

    def _configure(self, per_minute: int | None) -> None:
        self.per_minute = per_minute
        if per_minute is None:
            self._capacity = 0.0
            self._rate = 0.0
        else:
            self._capacity = float(max(1, per_minute // 20))
            self._rate = max(per_minute - self._capacity, 1.0) / 60.0
        self._tokens = self._capacity
        self._stamp = self._clock()

    def _refill(self, now: float) -> None:
        if self._rate:
            self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    def try_acquire(self) -> bool:
        """Take a token now if one is free and nobody is queued; never waits."""
        now = self._clock()
        if self._blocked_until > now or self._lock.locked():
            return False
        if self.per_minute is None:
            return True
        self._refill(now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    async def acquire(self) -> float:
        """Wait for a token (and for any cool-down); return the seconds waited."""
        if self.per_minute is None and self._blocked_until <= self._clock():
            return 0.0
        start = self._clock()
        async with self._lock:
            while True:
                now = self._clock()
                if self._blocked_until > now:
                    await asyncio.sleep(self._blocked_until - now)
                    continue
                if self.per_minute is None:
                    break
                self._refill(now)
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    break
                await asyncio.sleep((1.0 - self._tokens) / self._rate)
        return self._clock() - start

    def cooling_down(self) -> bool:
        """Whether a cool-down after a 429 is in force right now."""
        return self._blocked_until > self._clock()

    async def wait_cool_down(self) -> None:
        """Wait out a cool-down that started while this task was queued elsewhere."""
        # A loop, not an Event: another 429 may extend the cool-down while we sleep.
        while (left := self._blocked_until - self._clock()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(left)

    def cool_down(self, seconds: float) -> None:
        """Make every task of the client wait ``seconds`` from now (after a 429)."""
        until = self._clock() + max(0.0, seconds)
        if until > self._blocked_until:
            self._blocked_until = until
            self._tokens = 0.0

    def observe(self, headers: Mapping[str, str], *, wall_clock: Callable[[], float] = time.time) -> None:
        """Correct the bucket from the ``X-RateLimit-*`` headers of a response.

        The headers can only slow us down: a lower server limit replaces ours, ``Remaining``
        caps the tokens, and ``Remaining: 0`` waits until ``Reset``.
        """
        if self.per_minute is None:
            return
        state = RateLimitState.from_headers(headers)
        if state.limit is None and state.remaining is None:
            return
        self.state = state
        if state.limit is not None and 0 < state.limit < self.per_minute:
            self._configure(state.limit)
        if state.remaining is not None:
            self._refill(self._clock())
            self._tokens = min(self._tokens, float(state.remaining))
            if state.remaining <= 0 and state.reset is not None:
                wait = min(max(0.0, state.reset - wall_clock()), 60.0)
                self.cool_down(wait)


class SlidingWindow:
    """At most ``requests`` in any window of ``seconds`` (exact; used for small per-call limits)."""

    def __init__(self, requests: int, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.requests = requests
        self.seconds = seconds
        self._clock = clock
        self._times: collections.deque[float] = collections.deque()
        self._lock = asyncio.Lock()

    async def acquire(self) -> float:
        start = self._clock()
        async with self._lock:
            while True:
                now = self._clock()
                while self._times and self._times[0] <= now - self.seconds:
                    self._times.popleft()
                if len(self._times) < self.requests:
                    self._times.append(now)
                    break
                await asyncio.sleep(self._times[0] + self.seconds - now)
        return self._clock() - start

    def idle(self) -> bool:
        return not self._times or self._times[-1] <= self._clock() - self.seconds


class KeyedWindows:
    """One :class:`SlidingWindow` per key (for example per call id), dropped once idle."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[Hashable, SlidingWindow] = {}

    async def acquire(self, key: Hashable, requests: int, seconds: float) -> float:
        window = self._windows.get(key)
        if window is None:
            if len(self._windows) > 1000:
                for stale in [k for k, w in self._windows.items() if w.idle()]:
                    del self._windows[stale]
            window = self._windows[key] = SlidingWindow(requests, seconds, clock=self._clock)
        return await window.acquire()
