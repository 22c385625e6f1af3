"""``RedisLaunchStore``: one launch shared by many processes and hosts through Redis.

Workers that run the same launch (same input, same launch name, same Redis, same API key)
split the work: each lead is claimed atomically by exactly one worker and dialed at most once
fleet-wide. Workers keep a heartbeat; a worker silent for longer than ``lease`` is presumed
dead. Its leads that were claimed but not yet sent go to other workers; its leads that were
being sent become ``unknown`` (never dialed again automatically), as after a crash with a
journal.

Keys (``K`` is the API key's fingerprint, ``N`` the launch name; the braces keep a launch in
one Redis Cluster slot)::

    flireo:launch:{K:N}:leads    hash: identity -> JSON record of the lead
    flireo:launch:{K:N}:workers  hash: worker -> last heartbeat (ms, Redis clock)
    flireo:launch:{K:N}:meta     hash: run number, creation time, input size
    flireo:launch:{K:N}:dups     hash: input index -> index of the lead it repeats (this run)
    flireo:launch:{K:N}:counts   hash: state -> number of leads in that state

The launch state must outlive a Redis restart, or a restarted Redis forgets who was dialed:
use a Redis with append-only persistence (``appendonly yes``, ideally ``appendfsync
always``). :meth:`RedisLaunchStore.open` warns when persistence is off.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import attrs

from .._logging import logger
from ..bulk._store import (
    Busy,
    Claim,
    ClaimLostError,
    Duplicate,
    FinalStatus,
    Granted,
    LaunchStoreError,
    Lead,
    Settled,
)
from . import _scripts
from ._redis import NAME, connect, describe_error, redis_errors

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisLaunchStore", "LaunchStatusReport", "launch_status"]

T = TypeVar("T")
_MAX_ERROR = 500


def default_worker_name() -> str:
    """``host:pid:random`` — unique per store object, readable in status output."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


def _keys(scope: str, launch: str) -> dict[str, str]:
    base = f"flireo:launch:{{{scope}:{launch}}}:"
    return {name: base + name for name in ("leads", "workers", "meta", "dups", "counts")}


def _check_launch_name(launch: object) -> str:
    if not isinstance(launch, str) or not NAME.match(launch):
        raise ValueError(
            f"invalid launch name {launch!r}: use 1 to 100 letters, digits and . _ : @ / - "
            "(starting with a letter or digit)"
        )
    return launch


class RedisLaunchStore:
    """A launch store in Redis, for launches that run on several processes or hosts.

    ``RedisLaunchStore("redis://host:6379/0", launch="spring-campaign")`` (or a
    ``redis.asyncio.Redis`` client), passed as ``client.calls.create_many(leads, store=...)``
    by every worker. The launch name ties the workers together; give a new name (or new lead
    keys) for a launch that should call the same people again.

    - ``worker``: this worker's name in status output (default ``host:pid:random``).
    - ``lease``: seconds without a heartbeat after which a worker is presumed dead (default
      30; heartbeats go every third of it). Keep it well above the longest pause a worker's
      event loop can take.
    - ``wait_for_redis``: when Redis stops answering mid-launch, keep trying for this many
      seconds before stopping the launch (default 0: stop at once). Nothing is dialed while
      Redis is away.
    - ``total``: the number of leads in the input, shown by :func:`launch_status`.

    Needs the ``redis`` extra (``pip install 'flireo-async[redis]'``); Redis 6 or newer (or
    Valkey).
    """

    def __init__(
        self,
        redis: str | Redis,
        launch: str,
        *,
        worker: str | None = None,
        lease: float = 30.0,
        wait_for_redis: float = 0.0,
        total: int | None = None,
    ) -> None:
        self.launch = _check_launch_name(launch)
        if not (isinstance(lease, (int, float)) and 0.1 <= lease <= 3600.0):
            raise ValueError(f"lease must be from 0.1 to 3600 seconds, got {lease!r}")
        if not (isinstance(wait_for_redis, (int, float)) and 0.0 <= wait_for_redis <= 86400.0):
            raise ValueError(f"wait_for_redis must be from 0 to 86400 seconds, got {wait_for_redis!r}")
        self._redis, self._owned, self._where = connect(redis)
        self.worker = worker or default_worker_name()
        self.lease = float(lease)
        self.wait_for_redis = float(wait_for_redis)
        self.total = total
        self.run = 0
        self._keys: dict[str, str] = {}
        self._heartbeat: asyncio.Task[None] | None = None
        self._lost: str | None = None
        self._scripts = {
            name: self._redis.register_script(getattr(_scripts, name))
            for name in ("JOIN", "HEARTBEAT", "CLAIM", "SEND", "SETTLE")
        }

    @property
    def description(self) -> str:
        """``launch 'NAME' in redis at HOST:PORT``."""
        return f"launch {self.launch!r} in {self._where}"

    @property
    def _lease_ms(self) -> int:
        return int(self.lease * 1000)

    async def check(self) -> None:
        """Raise :class:`LaunchStoreError` with a clear message when Redis does not answer."""
        try:
            await self._redis.ping()
        except redis_errors() as exc:
            raise LaunchStoreError(f"cannot reach {self._where}: {describe_error(exc)}") from None
        except Exception as exc:
            raise LaunchStoreError(f"{self._where} refused the connection: {describe_error(exc)}") from None

    async def open(self, scope: str = "default") -> None:
        """Check Redis, join the launch's current run (or start one) and start heartbeats.

        ``scope`` names the API key (its fingerprint), so launches of different keys sharing
        one Redis never meet.
        """
        if self._heartbeat is not None:
            raise LaunchStoreError(f"{self.description} is already open")
        self._keys = _keys(scope, self.launch)
        self._lost = None
        try:
            await self._redis.ping()
            await self._warn_without_persistence()
            run, live = await self._scripts["JOIN"](
                keys=[self._keys["meta"], self._keys["workers"], self._keys["dups"]],
                args=[self.worker, self._lease_ms],
            )
            if self.total is not None:
                await self._redis.hset(self._keys["meta"], "total", self.total)
        except redis_errors() as exc:
            raise LaunchStoreError(f"cannot reach {self._where}: {describe_error(exc)}") from None
        except Exception as exc:  # e.g. NOAUTH, a read-only replica, scripting disabled
            raise LaunchStoreError(f"{self._where} refused the launch: {describe_error(exc)}") from None
        self.run = int(run)
        logger.info(
            "%s: worker %s joined run %d (%d other workers)", self.description, self.worker, self.run, live
        )
        self._heartbeat = asyncio.ensure_future(self._beat())

    async def _warn_without_persistence(self) -> None:
        try:
            info = await self._redis.info("persistence")
        except redis_errors():
            raise
        except Exception:  # INFO disabled (some managed services): nothing to check
            return
        if not int(info.get("aof_enabled", 0)):
            logger.warning(
                "%s: append-only persistence is off; if Redis restarts it forgets which leads were "
                "dialed (set appendonly yes, appendfsync always)",
                self._where,
            )

    async def _beat(self) -> None:
        interval = self.lease / 3
        while True:
            await asyncio.sleep(interval)
            try:
                alive = await self._scripts["HEARTBEAT"](
                    keys=[self._keys["workers"]], args=[self.worker, self._lease_ms]
                )
            except redis_errors() as exc:
                logger.warning("%s: heartbeat failed: %s", self.description, describe_error(exc))
                continue
            if not alive:
                self._lost = (
                    f"worker {self.worker} was presumed dead (no heartbeat for {self.lease:g} s) or "
                    "Redis lost the launch's state; its leads may have gone to other workers"
                )
                logger.error("%s: %s", self.description, self._lost)
                return

    async def _call(self, what: str, action: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis operation, waiting up to ``wait_for_redis`` for Redis to come back."""
        deadline = time.monotonic() + self.wait_for_redis
        delay = 0.25
        while True:
            try:
                return await action()
            except redis_errors() as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LaunchStoreError(
                        f"{self.description}: Redis stopped answering ({describe_error(exc)}) while "
                        f"recording {what}; nothing more is dialed"
                    ) from None
                logger.warning("%s: Redis unreachable, retrying for %.0f s more", self.description, left)
                await asyncio.sleep(min(delay, left))
                delay = min(delay * 2, 5.0)

    def _check_member(self) -> None:
        if self._heartbeat is None:
            raise LaunchStoreError(f"{self.description} is not open")
        if self._lost is not None:
            raise ClaimLostError(f"{self.description}: {self._lost}")

    async def claim(self, lead: Lead) -> Claim:
        """Atomically reserve the lead, or say who holds it or how it ended."""
        self._check_member()
        k = self._keys
        reply = await self._call(
            f"a claim for lead {lead.index}",
            lambda: self._scripts["CLAIM"](
                keys=[k["leads"], k["workers"], k["dups"], k["counts"]],
                args=[
                    lead.identity,
                    self.worker,
                    self.run,
                    lead.index,
                    lead.destination or "",
                    self._lease_ms,
                ],
            ),
        )
        kind = _text(reply[0])
        if kind == "granted":
            return Granted()
        if kind == "duplicate":
            return Duplicate(int(reply[1]))
        if kind == "busy":
            return Busy(_text(reply[1]))
        if kind == "settled":
            status: FinalStatus = _text(reply[1])  # type: ignore[assignment]
            return Settled(
                status,
                call_id=_text(reply[2]) or None,
                error=_text(reply[3]) or None,
                index=int(reply[4]),
                worker=_text(reply[5]) or None,
            )
        self._lost = self._lost or "this worker is no longer a member of the launch (presumed dead)"
        raise ClaimLostError(f"{self.description}: {self._lost}")

    async def mark_sending(self, lead: Lead) -> None:
        """Record "being dialed"; raises :class:`ClaimLostError` when the lead is no longer ours."""
        self._check_member()
        k = self._keys
        reply = await self._call(
            f"the start of lead {lead.index}",
            lambda: self._scripts["SEND"](
                keys=[k["leads"], k["workers"], k["counts"]],
                args=[lead.identity, self.worker, self.run, self._lease_ms],
            ),
        )
        if _text(reply) != "ok":
            raise ClaimLostError(f"{self.description}: lead {lead.index} was taken over by another worker")

    async def settle(
        self,
        lead: Lead,
        status: FinalStatus | Literal["released"],
        *,
        call_id: str | None = None,
        error: str | None = None,
    ) -> None:
        """Record the outcome (even after this worker lost its membership: it is the truth)."""
        if self._heartbeat is None:
            raise LaunchStoreError(f"{self.description} is not open")
        k = self._keys
        await self._call(
            f"the outcome of lead {lead.index}",
            lambda: self._scripts["SETTLE"](
                keys=[k["leads"], k["counts"]],
                args=[
                    lead.identity,
                    self.worker,
                    self.run,
                    status,
                    call_id or "",
                    (error or "")[:_MAX_ERROR],
                ],
            ),
        )

    async def close(self) -> None:
        """Stop the heartbeat and leave the run; close the connection if this store made it."""
        beat, self._heartbeat = self._heartbeat, None
        if beat is not None:
            beat.cancel()
            try:
                await beat
            except asyncio.CancelledError:
                pass
            try:
                await self._redis.hdel(self._keys["workers"], self.worker)
            except Exception as exc:  # Redis gone: the lease runs out on its own
                logger.warning("%s: could not leave the launch: %s", self.description, describe_error(exc))
        if self._owned:
            await self._redis.aclose(close_connection_pool=True)

    def __repr__(self) -> str:
        return f"RedisLaunchStore({self._where!r}, launch={self.launch!r}, worker={self.worker!r})"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@attrs.frozen(kw_only=True)
class LaunchStatusReport:
    """What Redis knows of a launch, across all its workers (see :func:`launch_status`)."""

    launch: str
    run: int
    total: int | None
    launched: int
    failed: int
    unknown: int
    in_flight: int
    """Claimed or being dialed right now."""
    duplicates: int
    """Inputs of the current run that repeat an earlier lead."""
    workers: dict[str, float]
    """Live workers and the seconds since their last heartbeat."""

    @property
    def settled(self) -> int:
        """Leads with a final outcome."""
        return self.launched + self.failed + self.unknown


async def launch_status(
    redis: str | Redis, launch: str, *, scope: str, lease: float = 30.0
) -> LaunchStatusReport:
    """The combined progress of a Redis launch: counts by outcome, live workers.

    ``scope`` is the API key's fingerprint (``flireo_async._types.key_fingerprint(key)``).
    """
    launch = _check_launch_name(launch)
    client, owned, where = connect(redis)
    k = _keys(scope, launch)
    try:
        try:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hgetall(k["counts"])
                pipe.hgetall(k["meta"])
                pipe.hgetall(k["workers"])
                pipe.hlen(k["dups"])
                pipe.time()
                counts_raw, meta_raw, workers_raw, dups, clock = await pipe.execute()
        except redis_errors() as exc:
            raise LaunchStoreError(f"cannot reach {where}: {describe_error(exc)}") from None
    finally:
        if owned:
            await client.aclose(close_connection_pool=True)
    counts = {_text(a): int(b) for a, b in counts_raw.items()}
    meta = {_text(a): _text(b) for a, b in meta_raw.items()}
    now_ms = int(clock[0]) * 1000 + int(clock[1]) // 1000
    workers = {
        _text(name): (now_ms - int(beat)) / 1000
        for name, beat in workers_raw.items()
        if now_ms - int(beat) <= lease * 1000
    }
    if not meta:
        raise LaunchStoreError(f"no launch {launch!r} in {where} for this API key")
    return LaunchStatusReport(
        launch=launch,
        run=int(meta.get("run", 0)),
        total=int(meta["total"]) if "total" in meta else None,
        launched=counts.get("launched", 0),
        failed=counts.get("failed", 0),
        unknown=counts.get("unknown", 0),
        in_flight=counts.get("claimed", 0) + counts.get("sending", 0),
        duplicates=int(dups),
        workers=workers,
    )
