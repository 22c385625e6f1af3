"""Remembering recent deliveries so that a redelivered webhook does not run its handlers twice.

Flireo's webhooks carry no delivery id and their retry policy is undocumented, so a delivery is
identified by its timestamp header and a hash of its raw body (with a signature present, that is
the same as "same timestamp and signature"). A key only needs to be kept while its timestamp is
inside the tolerance window: after that a replay fails verification anyway.

The router talks to a :class:`Dedupe`: :class:`DeliveryCache` (one process, the default) or
``RedisDedupe`` (every replica behind a load balancer).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from typing import Protocol, runtime_checkable

import attrs

from .._errors import FlireoError

__all__ = ["Reply", "Dedupe", "DedupeUnavailableError", "DeliveryCache", "delivery_key"]


@attrs.frozen
class Reply:
    """An HTTP answer the router gave (and replays to duplicates)."""

    status: int
    body: bytes | None = None


TIMED_OUT = Reply(503)
"""What a copy answers when the first delivery's answer did not come within its wait: the
platform may deliver it again, and by then the answer is stored."""


class DedupeUnavailableError(FlireoError):
    """The shared duplicate store cannot be reached, so a delivery cannot be claimed safely."""


def delivery_key(timestamp: str | None, body: bytes) -> bytes:
    """The identity of a delivery: a SHA-256 digest of its timestamp header and raw body.

    A digest, so that neither the body nor anything signed travels into a shared store's keys.
    """
    return hashlib.sha256((timestamp or "").encode("ascii", "replace") + b"." + body).digest()


@runtime_checkable
class Dedupe(Protocol):
    """Where a router records which deliveries it has handled and what it answered.

    For each delivery the router calls :meth:`claim` once and, when ``claim`` returned ``None``,
    :meth:`release` exactly once afterwards (also when handling failed or was cancelled).
    """

    async def claim(self, key: bytes, *, expires_at: float, wait: float | None) -> Reply | None:
        """``None`` when the caller is the first to see ``key`` and must handle the delivery;
        otherwise the reply of the first delivery, waiting for it up to ``wait`` seconds
        (``None``: the store's own bound) while it is being handled. ``expires_at`` (Unix
        seconds) is when a replay of this delivery fails verification anyway, so the key need
        not be kept longer. Raises :class:`DedupeUnavailableError` when the delivery cannot be
        claimed safely."""
        ...

    async def release(self, key: bytes, reply: Reply, *, remember: bool) -> None:
        """Record the reply of a delivery the caller claimed. Copies waiting for it get
        ``reply`` either way; ``remember=False`` then forgets the key, so that a later
        redelivery runs the handlers again (used when a handler failed)."""
        ...

    async def aclose(self) -> None:
        """Release connections (the router calls it when its application shuts down)."""
        ...


@attrs.define
class _Entry:
    expires_at: float
    reply: asyncio.Future[Reply]


class DeliveryCache:
    """An in-process :class:`Dedupe`: an LRU of delivery keys, each with the reply (or the
    pending reply) of its first delivery. Memory is bounded by ``max_entries`` (0 turns
    duplicate detection off)."""

    def __init__(self, *, max_entries: int) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be >= 0")
        self._max = max_entries
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def claim(self, key: bytes, *, expires_at: float, wait: float | None) -> Reply | None:
        """See :meth:`Dedupe.claim`; ``wait=None`` waits as long as the first delivery runs."""
        if self._max == 0:
            return None
        now = time.time()
        entry = self._entries.get(key)
        if entry is None or entry.expires_at < now:
            self._entries[key] = _Entry(expires_at, asyncio.get_running_loop().create_future())
            self._entries.move_to_end(key)
            self._evict(now)
            return None
        self._entries.move_to_end(key)
        first = entry.reply
        if first.done():
            return first.result()
        try:
            # Shielded: a copy that stops waiting must not cancel the first delivery's answer.
            return await asyncio.wait_for(asyncio.shield(first), wait)
        except asyncio.TimeoutError:
            return TIMED_OUT

    async def release(self, key: bytes, reply: Reply, *, remember: bool) -> None:
        """See :meth:`Dedupe.release`."""
        self.release_now(key, reply, remember=remember)

    def release_now(self, key: bytes, reply: Reply, *, remember: bool) -> None:
        """:meth:`release` without awaiting (usable while a request is being cancelled)."""
        entry = self._entries.get(key)
        if entry is None:
            return
        if not entry.reply.done():
            entry.reply.set_result(reply)
        if not remember:
            del self._entries[key]

    async def aclose(self) -> None:
        """Nothing to release: the cache lives in this process."""

    def _evict(self, now: float) -> None:
        # Entries arrive roughly in timestamp order, so expired ones collect at the head.
        while self._entries:
            oldest_key, oldest = next(iter(self._entries.items()))
            if len(self._entries) > self._max or (oldest.expires_at < now and oldest.reply.done()):
                del self._entries[oldest_key]
            else:
                break
