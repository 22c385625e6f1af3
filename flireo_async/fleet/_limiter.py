"""``RedisRateLimiter``: one request budget for every process and host that shares an API key.

Every permission to send is granted by a script that Redis runs atomically (a generic
cell-rate algorithm over the Redis clock), so however many workers ask, no window of one
period sees more than the budget. A 429 seen by any worker sets a cool-down in Redis that
all of them honour; the per-call window of call control (10 commands per minute per call) is
kept in Redis too.

When Redis stops answering, each process falls back to a local bucket with a safe share of
the budget — the budget divided by the number of workers seen in the last two minutes (four
when none was ever seen) — and tries Redis again every few seconds. It never falls back to
no pacing at all.

Keys: ``flireo:rl:{K}`` (state), ``flireo:rl:{K}:members``, ``flireo:rl:{K}:key:<id>`` (per-call
windows), where ``K`` is the API key's fingerprint.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._logging import logger
from .._ratelimit import LocalPacer
from .._response import RateLimitState
from . import _scripts
from ._redis import connect, describe_error, redis_errors

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisRateLimiter", "RedisPacer"]

_MEMBER_WINDOW = 120.0
_RETRY_REDIS = 5.0
_DEFAULT_SHARE = 4


class RedisRateLimiter:
    """Share one rate-limit budget across processes and hosts: ``AsyncFlireo(rate_limiter=...)``.

    ``RedisRateLimiter("redis://host:6379/0")`` (or a ``redis.asyncio.Redis`` client). Every
    client given this limiter, in any process, paces against the same budget per API key: the
    client's ``rate_limit`` (the API's 100/min by default), lowered when the server's
    ``X-RateLimit-Limit`` says less.

    - ``period``: the window, in seconds, within which the budget is never exceeded (60, as the
      API counts). A shorter period spreads requests more evenly: ``rate_limit`` stays per
      minute and each window of ``period`` seconds gets ``rate_limit * period / 60``.
    - ``margin``: seconds added to the period when spreading requests, so that requests that
      reach the server a little after they were granted never crowd one window (default 1).
    - ``fallback_workers``: the share of the budget a process keeps while Redis is away when it
      never saw how many workers there are (default 4: a quarter).

    Needs the ``redis`` extra (``pip install 'flireo-async[redis]'``).
    """

    def __init__(
        self,
        redis: str | Redis,
        *,
        period: float = 60.0,
        margin: float = 1.0,
        fallback_workers: int = _DEFAULT_SHARE,
    ) -> None:
        if not (isinstance(period, (int, float)) and period > 0):
            raise ValueError(f"period must be a positive number of seconds, got {period!r}")
        if not (isinstance(margin, (int, float)) and 0 <= margin <= period):
            raise ValueError(f"margin must be from 0 to the period, got {margin!r}")
        if not (isinstance(fallback_workers, int) and fallback_workers >= 1):
            raise ValueError(f"fallback_workers must be a positive integer, got {fallback_workers!r}")
        self._redis, self._owned, self.where = connect(redis)
        self.period = float(period)
        self.margin = float(margin)
        self.fallback_workers = fallback_workers
        self._scripts = {
            name: self._redis.register_script(getattr(_scripts, name))
            for name in ("ACQUIRE", "COOL_DOWN", "LOWER_LIMIT", "ACQUIRE_KEY")
        }
        self._pacers = 0

    def pacer(self, key_id: str, per_minute: int | None) -> RedisPacer:
        """The pacer of one API key (by fingerprint) and budget."""
        self._pacers += 1
        return RedisPacer(self, key_id, per_minute)

    async def _release(self) -> None:
        self._pacers -= 1
        if self._pacers <= 0 and self._owned:
            await self._redis.aclose(close_connection_pool=True)

    def __repr__(self) -> str:
        return f"RedisRateLimiter({self.where!r}, period={self.period:g})"


class RedisPacer:
    """A :class:`~flireo_async._ratelimit.Pacer` whose budget lives in Redis.

    Tasks of one process queue locally (first come, first served) so that only one of them
    asks Redis at a time; the processes compete in Redis.
    """

    def __init__(self, limiter: RedisRateLimiter, key_id: str, per_minute: int | None) -> None:
        self._limiter = limiter
        self._redis = limiter._redis
        self._scripts = limiter._scripts
        self._budget = per_minute
        self._state_key = f"flireo:rl:{{{key_id}}}"
        self._members_key = self._state_key + ":members"
        self._member = secrets.token_hex(8)
        self._lock = asyncio.Lock()
        self._cool_until = 0.0  # monotonic time; what this process knows of the shared cool-down
        self._members_seen = 0
        self._budget_in_force = per_minute
        self._fallback: LocalPacer | None = None
        self._retry_at = 0.0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    # -- the budget ----------------------------------------------------------------------------

    @property
    def per_minute(self) -> int | None:
        """The budget in force (lowered when the server announces less)."""
        return self._budget_in_force

    @property
    def falling_back(self) -> bool:
        """Whether Redis is unreachable and this process paces itself with a local share."""
        return self._fallback is not None

    def try_acquire(self) -> bool:
        """Never decided locally: every permission comes from Redis (``False``)."""
        return self._budget is None and not self.cooling_down()

    async def acquire(self) -> float:
        """Wait for permission from Redis (or from the local fallback while Redis is away)."""
        start = time.monotonic()
        async with self._lock:
            while True:
                if self._fallback is not None and time.monotonic() < self._retry_at:
                    await self._fallback.acquire()
                    break
                left = self._cool_until - time.monotonic()
                if self._budget is None:
                    if left > 0:
                        await asyncio.sleep(left)
                    break
                try:
                    allowed, wait_ms, budget, members, cool_ms = await self._scripts["ACQUIRE"](
                        keys=[self._state_key, self._members_key],
                        args=[
                            self._budget,
                            int(self._limiter.period * 1000),
                            int(self._limiter.margin * 1000),
                            self._member,
                            int(_MEMBER_WINDOW * 1000),
                        ],
                    )
                except redis_errors() as exc:
                    self._fall_back(exc)
                    continue
                self._recovered()
                self._budget_in_force = int(budget)
                self._members_seen = int(members)
                if int(cool_ms):  # another worker's 429: this process knows of it now
                    self._cool_until = max(self._cool_until, time.monotonic() + int(cool_ms) / 1000)
                if allowed:
                    break
                await asyncio.sleep(int(wait_ms) / 1000)
        return time.monotonic() - start

    def _fall_back(self, error: BaseException) -> None:
        assert self._budget is not None
        workers = self._members_seen or self._limiter.fallback_workers
        share = max(1, self._budget // max(1, workers))
        if self._fallback is None:
            logger.warning(
                "rate limiter: Redis unreachable (%s); pacing this process at %d/min (1/%d of %d) "
                "until it is back",
                describe_error(error),
                share,
                workers,
                self._budget,
            )
            self._fallback = LocalPacer(share)
            left = self._cool_until - time.monotonic()
            if left > 0:
                self._fallback.bucket.cool_down(left)
        self._retry_at = time.monotonic() + _RETRY_REDIS

    def _recovered(self) -> None:
        if self._fallback is not None:
            logger.warning("rate limiter: Redis is back; pacing against the shared budget again")
            self._fallback = None

    async def acquire_key(self, key: str, requests: int, per_seconds: float) -> float:
        """Wait for a slot in ``key``'s shared window (e.g. one call's control commands)."""
        start = time.monotonic()
        window_key = f"{self._state_key}:key:{key}"
        while True:
            if self._fallback is not None and time.monotonic() < self._retry_at:
                return await self._fallback.acquire_key(key, requests, per_seconds)
            try:
                wait_ms = await self._scripts["ACQUIRE_KEY"](
                    keys=[window_key],
                    args=[requests, int(per_seconds * 1000), secrets.token_hex(8)],
                )
            except redis_errors() as exc:
                self._fall_back(exc)
                continue
            if not int(wait_ms):
                return time.monotonic() - start
            await asyncio.sleep(int(wait_ms) / 1000)

    # -- cool-downs and headers ----------------------------------------------------------------

    def cooling_down(self) -> bool:
        """Whether this process knows of a cool-down in force."""
        return self._cool_until > time.monotonic()

    def cool_down_left(self) -> float:
        """Seconds left of the cool-down this process knows of."""
        return max(0.0, self._cool_until - time.monotonic())

    async def wait_cool_down(self) -> None:
        """Wait out the cool-down this process knows of."""
        # A loop, not an Event: another 429 may extend the cool-down while we sleep.
        while (left := self._cool_until - time.monotonic()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(left)

    async def cool_down(self, seconds: float) -> None:
        """Hold every worker on this key for ``seconds`` (the caller caps it)."""
        seconds = max(0.0, seconds)
        self._cool_until = max(self._cool_until, time.monotonic() + seconds)
        if self._fallback is not None:
            self._fallback.bucket.cool_down(seconds)
        budget = self._budget_in_force or self._budget or 1
        try:
            await self._scripts["COOL_DOWN"](
                keys=[self._state_key],
                args=[
                    int(seconds * 1000),
                    budget,
                    int(self._limiter.period * 1000),
                    int(self._limiter.margin * 1000),
                ],
            )
        except redis_errors() as exc:
            if self._budget is not None:
                self._fall_back(exc)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Share what the server said: a lower limit lowers everyone's budget; ``Remaining: 0``
        cools everyone down until ``Reset`` (at most 60 s)."""
        if self._budget is None:
            return
        state = RateLimitState.from_headers(headers)
        if state.limit is not None and 0 < state.limit < (self._budget_in_force or self._budget):
            self._budget_in_force = state.limit
            self._spawn(
                self._scripts["LOWER_LIMIT"](
                    keys=[self._state_key], args=[state.limit, int(self._limiter.period * 10_000)]
                )
            )
        if state.remaining is not None and state.remaining <= 0 and state.reset is not None:
            wait = min(max(0.0, state.reset - time.time()), 60.0)
            if wait > 0:
                self._spawn(self.cool_down(wait))

    def _spawn(self, coro: Any) -> None:
        async def run() -> None:
            try:
                await coro
            except redis_errors() as exc:
                logger.warning("rate limiter: could not share a rate-limit update: %s", describe_error(exc))

        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Finish pending updates; close the limiter's connection with its last pacer."""
        if self._closed:
            return
        self._closed = True
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._limiter._release()

    def __repr__(self) -> str:
        return f"RedisPacer({self._limiter.where!r}, per_minute={self.per_minute})"
