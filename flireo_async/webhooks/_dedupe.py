"""Remembering recent deliveries so that a redelivered webhook does not run its handlers twice.

Flireo's webhooks carry no delivery id and their retry policy is undocumented, so a delivery is
identified by its timestamp header and a hash of its raw body (with a signature present, that is
the same as "same timestamp and signature"). A key only needs to be kept while its timestamp is
inside the tolerance window: after that a replay fails verification anyway. Memory is bounded by
``max_entries`` on top of that.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict

import attrs

from ._verify import timestamp_seconds

__all__ = ["Reply", "DeliveryCache"]


@attrs.frozen
class Reply:
    """An HTTP answer the router gave (and replays to duplicates)."""

    status: int
    body: bytes | None = None


@attrs.define
class _Entry:
    expires_at: float
    reply: asyncio.Future[Reply]


class DeliveryCache:
    """An LRU of delivery keys, each with the reply (or the pending reply) of its first delivery."""

    def __init__(self, *, max_entries: int, tolerance: float) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be >= 0")
        self._max = max_entries
        self._tolerance = tolerance
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(timestamp: str | None, body: bytes) -> bytes:
        """The identity of a delivery: its timestamp header and raw body."""
        return hashlib.sha256((timestamp or "").encode("ascii", "replace") + b"." + body).digest()

    def claim(self, key: bytes, timestamp: str | None) -> asyncio.Future[Reply] | None:
        """Register a first delivery and return ``None``; for a duplicate return the future
        holding the reply of the first delivery (already done, or done once it is handled)."""
        if self._max == 0:
            return None
        now = time.time()
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at >= now:
            self._entries.move_to_end(key)
            return entry.reply
        # Unsigned deliveries may lack a usable timestamp: keep those for one tolerance window.
        seconds = timestamp_seconds(timestamp)
        stamp = float(seconds) if seconds is not None else now
        self._entries[key] = _Entry(stamp + self._tolerance, asyncio.get_running_loop().create_future())
        self._entries.move_to_end(key)
        self._evict(now)
        return None

    def resolve(self, key: bytes, reply: Reply, *, remember: bool = True) -> None:
        """Record the reply of a first delivery; ``remember=False`` forgets the key instead, so
        that a redelivery of a delivery whose handler failed runs the handler again."""
        entry = self._entries.get(key)
        if entry is None:
            return
        if not entry.reply.done():
            entry.reply.set_result(reply)
        if not remember:
            del self._entries[key]

    def _evict(self, now: float) -> None:
        # Entries arrive roughly in timestamp order, so expired ones collect at the head.
        while self._entries:
            oldest_key, oldest = next(iter(self._entries.items()))
            if len(self._entries) > self._max or (oldest.expires_at < now and oldest.reply.done()):
                del self._entries[oldest_key]
            else:
                break
