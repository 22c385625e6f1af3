"""Client-side pacing: one budget per API key, a shared cool-down after a 429, per-call windows.

The API allows 100 requests per minute per key and 10 control commands per minute per call.
Pacing on our side means the server's limit is rarely hit; when it is, every task waits out
the same ``Retry-After`` instead of hammering the API one by one.

Two layers:

- a :class:`RateLimiter` is what a user passes to ``AsyncFlireo(rate_limiter=...)``: a policy
  that can pace any API key. :class:`LocalRateLimiter` (the default) paces one process;
  :class:`flireo_async.fleet.RedisRateLimiter` paces every process that shares a Redis.
- a :class:`Pacer` is that policy bound to one key and budget; the transport asks it for
  permission before every request and tells it about 429s and ``X-RateLimit-*`` headers.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Protocol, runtime_checkable

from ._clock import SYSTEM_CLOCK
from ._clock import Clock as ClockObject
from ._response import RateLimitState

_EPSILON = 1e-9
_NEVER = -float("inf")
"""``_blocked_until`` of a bucket that never cooled down: whatever the clock says, no
cool-down is in force, so the common unpaced call needs no clock reading."""

__all__ = [
    "Pacer",
    "RateLimiter",
    "LocalRateLimiter",
    "LocalPacer",
    "TokenBucket",
    "SlidingWindow",
    "KeyedWindows",
    "bucket_shape",
]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@runtime_checkable
class Pacer(Protocol):
    """Permission to send, for one API key: what the transport asks before every request."""

    @property
    def per_minute(self) -> int | None:
        """The budget in force (requests per minute), ``None`` when pacing is off."""
        ...

    def try_acquire(self) -> bool:
        """Take permission now if that can be decided at once without waiting; else ``False``."""
        ...

    async def acquire(self) -> float:
        """Wait for permission to send one request (and for any cool-down); return the seconds
        waited."""
        ...

    async def acquire_key(self, key: str, requests: int, per_seconds: float) -> float:
        """Also wait for a slot of a smaller per-key window (e.g. 10 commands per minute per
        call); return the seconds waited."""
        ...

    def cooling_down(self) -> bool:
        """Whether a cool-down after a 429 is known to be in force right now."""
        ...

    async def wait_cool_down(self) -> None:
        """Wait out a cool-down that started while this task was queued elsewhere."""
        ...

    def cool_down_left(self) -> float:
        """Seconds left of the cool-down known to be in force (0 when there is none)."""
        ...

    async def cool_down(self, seconds: float) -> None:
        """Hold every request sharing this budget for ``seconds`` from now (after a 429)."""
        ...

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn from the ``X-RateLimit-*`` headers of a response; may only slow down."""
        ...

    async def aclose(self) -> None:
        """Release what the pacer holds (connections, background tasks)."""
        ...


@runtime_checkable
class RateLimiter(Protocol):
    """A pacing policy: makes the :class:`Pacer` of one API key.

    ``key_id`` names the key without revealing it (a hash: see
    :func:`flireo_async._config.key_fingerprint`); ``per_minute`` is the client's
    ``rate_limit`` (``None`` = no pacing, cool-downs after a 429 still apply).
    """

    def pacer(self, key_id: str, per_minute: int | None) -> Pacer:
        """The pacer for one key and budget."""
        ...


def bucket_shape(per_minute: int, period: float = 60.0, margin: float = 0.0) -> tuple[float, float]:
    """``(burst, rate per second)`` of a bucket that never lets ``per_minute`` be exceeded.

    The burst is 5 % of the budget and the rest is spread evenly, so that no window of
    ``period`` seconds sees more than the budget however the server aligns its windows.
    ``margin`` stretches the period, for requests that reach the server a little later than
    they were granted (a budget shared over the network).
    """
    burst = float(max(1, per_minute // 20))
    rate = max(per_minute - burst, 1.0) / (period + margin)
    return burst, rate


class TokenBucket:
    """At most ``per_minute`` requests in any 60-second window, with a small burst.

    The burst is 5 % of the limit and the refill rate is the rest, spread over the minute, so
    that a fixed or sliding server window of 60 s never sees more than ``per_minute``.
    ``per_minute=None`` turns pacing off; cool-downs after a 429 still apply.
    Waiters are served in arrival order.
    """

    def __init__(
        self,
        per_minute: int | None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        wall_clock: Clock = time.time,
    ) -> None:
        if per_minute is not None and per_minute < 1:
            raise ValueError("rate_limit must be a positive number of requests per minute or None")
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._lock = asyncio.Lock()
        self._blocked_until = _NEVER
        self.state = RateLimitState(None, None, None)
        self._ceiling = per_minute
        self._configure(per_minute)

    def _configure(self, per_minute: int | None) -> None:
        self.per_minute = per_minute
        if per_minute is None:
            self._capacity = 0.0
            self._rate = 0.0
        else:
            self._capacity, self._rate = bucket_shape(per_minute)
        self._tokens = self._capacity
        self._stamp = self._clock()

    def _refill(self, now: float) -> None:
        if self._rate:
            self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    def try_acquire(self) -> bool:
        """Take a token now if one is free and nobody is queued; never waits."""
        if self._lock.locked():
            return False
        if self.per_minute is None:
            # Unpaced and never cooled down: no clock to read (the common case of every call).
            return self._blocked_until == _NEVER or self._blocked_until <= self._clock()
        now = self._clock()
        if self._blocked_until > now:
            return False
        self._refill(now)
        if self._tokens >= 1.0 - _EPSILON:
            self._tokens = max(0.0, self._tokens - 1.0)
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
                    await self._sleep(self._blocked_until - now)
                    continue
                if self.per_minute is None:
                    break
                self._refill(now)
                # The tolerance absorbs float rounding: a refill that should reach exactly one
                # token may land a hair below it, and a clock that only moves when slept on
                # would then be asked for sleeps too small to advance it.
                if self._tokens >= 1.0 - _EPSILON:
                    self._tokens = max(0.0, self._tokens - 1.0)
                    break
                await self._sleep((1.0 - self._tokens) / self._rate)
        return self._clock() - start

    def cooling_down(self) -> bool:
        """Whether a cool-down after a 429 is in force right now."""
        return self._blocked_until > self._clock()

    def cool_down_left(self) -> float:
        """Seconds left of the cool-down in force (0 when there is none)."""
        if self._blocked_until == _NEVER:
            return 0.0
        return max(0.0, self._blocked_until - self._clock())

    async def wait_cool_down(self) -> None:
        """Wait out a cool-down that started while this task was queued elsewhere."""
        # A loop, not an Event: another 429 may extend the cool-down while we sleep.
        while (left := self._blocked_until - self._clock()) > 0:
            await self._sleep(left)

    def cool_down(self, seconds: float) -> None:
        """Make every task of the client wait ``seconds`` from now (after a 429)."""
        until = self._clock() + max(0.0, seconds)
        if until > self._blocked_until:
            self._blocked_until = until
            self._tokens = 0.0

    def observe(self, headers: Mapping[str, str]) -> None:
        """Correct the bucket from the ``X-RateLimit-*`` headers of a response.

        The headers can only slow us down: a lower server limit replaces ours (and a later,
        higher one restores it, never above the configured budget), ``Remaining`` caps the
        tokens, and ``Remaining: 0`` waits until ``Reset`` (at most 60 s).
        """
        if self.per_minute is None:
            return
        state = RateLimitState.from_headers(headers)
        if state.limit is None and state.remaining is None:
            return
        self.state = state
        if state.limit is not None and state.limit > 0 and self._ceiling is not None:
            wanted = min(state.limit, self._ceiling)
            if wanted != self.per_minute:
                tokens = self._tokens
                self._configure(wanted)
                self._tokens = min(tokens, self._capacity)
        if state.remaining is not None:
            self._refill(self._clock())
            self._tokens = min(self._tokens, float(state.remaining))
            if state.remaining <= 0 and state.reset is not None:
                wait = min(max(0.0, state.reset - self._wall_clock()), 60.0)
                self.cool_down(wait)


class SlidingWindow:
    """At most ``requests`` in any window of ``seconds`` (exact; used for small per-call limits)."""

    def __init__(
        self,
        requests: int,
        seconds: float,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.requests = requests
        self.seconds = seconds
        self._clock = clock
        self._sleep = sleep
        self._times: collections.deque[float] = collections.deque()
        self._lock = asyncio.Lock()

    async def acquire(self) -> float:
        """Wait for a slot; return the seconds waited."""
        start = self._clock()
        async with self._lock:
            while True:
                now = self._clock()
                while self._times and self._times[0] <= now - self.seconds + _EPSILON:
                    self._times.popleft()
                if len(self._times) < self.requests:
                    self._times.append(now)
                    break
                await self._sleep(self._times[0] + self.seconds - now)
        return self._clock() - start

    def idle(self) -> bool:
        """Whether the window is empty (so it can be forgotten)."""
        return not self._times or self._times[-1] <= self._clock() - self.seconds


class KeyedWindows:
    """One :class:`SlidingWindow` per key (for example per call id), dropped once idle."""

    def __init__(self, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._windows: dict[Hashable, SlidingWindow] = {}

    async def acquire(self, key: Hashable, requests: int, seconds: float) -> float:
        """Wait for a slot in ``key``'s window; return the seconds waited."""
        window = self._windows.get(key)
        if window is None:
            if len(self._windows) > 1000:
                for stale in [k for k, w in self._windows.items() if w.idle()]:
                    del self._windows[stale]
            window = self._windows[key] = SlidingWindow(
                requests, seconds, clock=self._clock, sleep=self._sleep
            )
        return await window.acquire()


class LocalPacer:
    """The in-process :class:`Pacer`: a :class:`TokenBucket` plus per-key windows.

    Shared by every task of a client (and of the clients derived from it with
    ``with_options``), never by other processes.
    """

    def __init__(
        self,
        per_minute: int | None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        wall_clock: Clock = time.time,
    ) -> None:
        self.bucket = TokenBucket(per_minute, clock=clock, sleep=sleep, wall_clock=wall_clock)
        self.windows = KeyedWindows(clock=clock, sleep=sleep)

    @property
    def per_minute(self) -> int | None:
        """The budget in force (lowered when the server announces a lower limit)."""
        return self.bucket.per_minute

    def try_acquire(self) -> bool:
        """Take a token now if one is free; never waits."""
        return self.bucket.try_acquire()

    async def acquire(self) -> float:
        """Wait for a token and any cool-down."""
        return await self.bucket.acquire()

    async def acquire_key(self, key: str, requests: int, per_seconds: float) -> float:
        """Wait for a slot of ``key``'s own window."""
        return await self.windows.acquire(key, requests, per_seconds)

    def cooling_down(self) -> bool:
        """Whether a cool-down is in force."""
        return self.bucket.cooling_down()

    async def wait_cool_down(self) -> None:
        """Wait out the cool-down in force."""
        await self.bucket.wait_cool_down()

    def cool_down_left(self) -> float:
        """Seconds left of the cool-down in force."""
        return self.bucket.cool_down_left()

    async def cool_down(self, seconds: float) -> None:
        """Hold every task of this client for ``seconds``."""
        self.bucket.cool_down(seconds)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Correct the bucket from ``X-RateLimit-*`` headers."""
        self.bucket.observe(headers)

    async def aclose(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"LocalPacer(per_minute={self.per_minute})"


class LocalRateLimiter:
    """The default :class:`RateLimiter`: each client paces itself in its own process.

    Right for one process. Several processes (replicas, workers) on one API key each get the
    whole budget and together exceed it; share one budget with
    :class:`flireo_async.fleet.RedisRateLimiter` instead. ``clock`` is what it waits with
    (the system clock unless a test gives a virtual one).
    """

    def __init__(self, *, clock: ClockObject = SYSTEM_CLOCK) -> None:
        self.clock = clock

    def pacer(self, key_id: str, per_minute: int | None) -> LocalPacer:
        """A new in-process pacer (the key does not matter: nothing is shared)."""
        return LocalPacer(per_minute, clock=self.clock.monotonic, sleep=self.clock.sleep)

    def __repr__(self) -> str:
        return "LocalRateLimiter()"
