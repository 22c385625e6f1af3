"""``RedisDedupe``: duplicate detection shared by every replica of a webhook receiver.

One key per delivery, ``flireo:webhook:{<sha256 of timestamp and body>}``, holds either

- ``P<token>``: a replica claimed the delivery and is handling it (a lease of ``lease``
  seconds, renewed while the handlers run, so that a crashed replica's claim runs out), or
- ``R<status>:<body>`` / ``R<status>-``: the reply, kept until the delivery's timestamp leaves
  the tolerance window (after that a replay fails verification anyway).

Claiming is one Lua script (read, and set-if-absent with the lease), so exactly one replica
wins. A copy that finds the delivery pending polls until the reply is there, the claim has run
out (then it claims the delivery itself) or its wait is over (then it answers 503). When the
handler failed the key is deleted, so that a redelivery runs it again; the failing reply is left
under ``...:<token>`` for a short while, so that copies that were waiting on that very claim
still get it.

Keys hold digests only: no body, signature or secret reaches Redis.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any, Literal

from ..fleet._redis import connect, describe_error, redis_errors
from ._dedupe import TIMED_OUT, DedupeUnavailableError, Reply

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisDedupe"]

logger = logging.getLogger("flireo_async.webhooks")

# KEYS: the delivery, the outcome of the claim the caller saw pending (or the delivery again).
# ARGV: our pending value, lease (ms), "1" when the caller saw a claim pending.
# Returns the stored value (pending or reply), the outcome of the awaited claim, or nil when
# the caller now holds the claim.
_CLAIM = """
local value = redis.call('GET', KEYS[1])
if value then return value end
if ARGV[3] == '1' then
  local outcome = redis.call('GET', KEYS[2])
  if outcome then return outcome end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"""

# KEYS: the delivery, the outcome of our claim. ARGV: our pending value, the reply, its time to
# live (ms), "1" to remember it, the outcome's time to live (ms).
# A claim that ran out and was taken by another replica is left to that replica.
_RELEASE = """
local value = redis.call('GET', KEYS[1])
if ARGV[4] == '1' then
  if value == ARGV[1] or not value then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  end
else
  if value == ARGV[1] then redis.call('DEL', KEYS[1]) end
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[5])
end
return 1
"""

# KEYS: the delivery. ARGV: our pending value, lease (ms).
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_FIRST_POLL = 0.01
_MAX_POLL = 0.2


def _encode(reply: Reply) -> bytes:
    head = b"R%d" % reply.status
    return head + b"-" if reply.body is None else head + b":" + reply.body


def _decode(value: bytes) -> Reply:
    status, separator, body = value[1:].partition(b":")
    if separator:
        return Reply(int(status), body)
    return Reply(int(value[1:].rstrip(b"-")))


class _Held:
    """A claim this process holds: its pending value, the local waiters and the renewer."""

    __slots__ = ("expires_at", "pending", "renewer", "reply")

    def __init__(self, pending: bytes, reply: asyncio.Future[Reply], expires_at: float) -> None:
        self.pending = pending
        self.reply = reply
        self.expires_at = expires_at
        self.renewer: asyncio.Task[None] | None = None


class RedisDedupe:
    """Duplicate detection shared through Redis by every replica of a webhook receiver.

    ``WebhookRouter(secret, dedupe=RedisDedupe("redis://redis:6379/0"))`` on each replica: a
    delivery is handled by one replica only, and a copy that reaches another replica (or the
    same one) replays its reply, waiting for it while the first copy is still being handled.

    ``target`` is a ``redis://``, ``rediss://`` or ``unix://`` URL (the client is closed with
    the router) or a ``redis.asyncio.Redis`` client (left open). ``lease`` is how long a claim
    lasts without renewal: it is renewed every ``lease / 3`` seconds while the handlers run, so
    it only matters when a replica dies mid-delivery; then a copy can be handled after at most
    ``lease`` seconds. ``max_wait`` bounds how long a copy waits for the first one's reply when
    the router gives no deadline (notification events); a copy that waited in vain answers
    503. ``prefix`` starts every key.

    When Redis cannot be reached, ``on_unavailable="reject"`` (the default) makes the router
    answer 503 without running a handler: a tool that books or charges must not run twice,
    and a 503 is what the platform treats as a failed delivery that it may send again, when
    Redis may be back. ``"handle"`` runs the handlers anyway (duplicates may then run twice)
    for receivers whose handlers are idempotent and which value availability more.

    Needs the ``redis`` extra: ``pip install 'flireo-async[redis]'``.
    """

    def __init__(
        self,
        target: str | Redis,
        *,
        lease: float = 15.0,
        max_wait: float = 30.0,
        on_unavailable: Literal["reject", "handle"] = "reject",
        prefix: str = "flireo:webhook:",
    ) -> None:
        if not lease > 0:
            raise ValueError("lease must be > 0 seconds")
        if not max_wait > 0:
            raise ValueError("max_wait must be > 0 seconds")
        if on_unavailable not in ("reject", "handle"):
            raise ValueError(f"on_unavailable must be 'reject' or 'handle', not {on_unavailable!r}")
        if not isinstance(prefix, str) or not prefix:
            raise ValueError("prefix must be a non-empty string")
        self._redis, self._owned, self._where = connect(target)
        self.lease = lease
        self.max_wait = max_wait
        self.on_unavailable = on_unavailable
        self._prefix = prefix
        self._lease_ms = max(1, int(lease * 1000))
        self._claim_script: Any = self._redis.register_script(_CLAIM)
        self._release_script: Any = self._redis.register_script(_RELEASE)
        self._renew_script: Any = self._redis.register_script(_RENEW)
        self._held: dict[bytes, _Held] = {}
        self._errors = redis_errors()

    def __repr__(self) -> str:
        return f"RedisDedupe({self._where}, lease={self.lease:g}, on_unavailable={self.on_unavailable!r})"

    def _key(self, key: bytes) -> str:
        # The braces keep a delivery's keys in one Redis Cluster slot.
        return f"{self._prefix}{{{key.hex()}}}"

    async def claim(self, key: bytes, *, expires_at: float, wait: float | None) -> Reply | None:
        """See ``Dedupe.claim``: ``None`` when this replica must handle the delivery."""
        held = self._held.get(key)
        if held is not None:
            # A copy of a delivery this process is handling: no need to ask Redis.
            try:
                return await asyncio.wait_for(asyncio.shield(held.reply), self._bound(wait))
            except asyncio.TimeoutError:
                return TIMED_OUT
        pending = b"P" + secrets.token_hex(8).encode("ascii")
        name = self._key(key)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._bound(wait)
        seen: bytes | None = None
        pause = _FIRST_POLL
        while True:
            try:
                value = await self._claim_script(
                    keys=[name, name + ":" + seen[1:].decode("ascii") if seen else name],
                    args=[pending, self._lease_ms, "1" if seen else "0"],
                )
            except self._errors as exc:
                return self._unavailable(exc)
            if value is None:
                self._hold(key, name, pending, expires_at, loop)
                return None
            if value[:1] == b"R":
                return _decode(value)
            seen = value
            remaining = deadline - loop.time()
            if remaining <= 0:
                logger.warning("gave up waiting for the first copy of a webhook delivery; answered 503")
                return TIMED_OUT
            await asyncio.sleep(min(pause, remaining))
            pause = min(pause * 2, _MAX_POLL)

    async def release(self, key: bytes, reply: Reply, *, remember: bool) -> None:
        """See ``Dedupe.release``. A Redis error is logged, not raised: the handlers have run
        and their reply still goes out; copies elsewhere then wait until the claim runs out."""
        held = self._held.pop(key, None)
        if held is None:
            return
        if held.renewer is not None:
            held.renewer.cancel()
        if not held.reply.done():
            held.reply.set_result(reply)
        name = self._key(key)
        ttl_ms = max(1000, int((held.expires_at - time.time()) * 1000))
        try:
            await self._release_script(
                keys=[name, name + ":" + held.pending[1:].decode("ascii")],
                args=[held.pending, _encode(reply), ttl_ms, "1" if remember else "0", self._outcome_ms()],
            )
        except self._errors as exc:
            logger.error(
                "could not record a webhook reply in %s (%s); other replicas will handle a copy after the lease",
                self._where,
                describe_error(exc),
            )

    async def aclose(self) -> None:
        """Stop renewing claims and close the client if it was made from a URL."""
        for held in self._held.values():
            if held.renewer is not None:
                held.renewer.cancel()
        if self._owned:
            await self._redis.aclose()

    # --- internals ------------------------------------------------------------------------

    def _bound(self, wait: float | None) -> float:
        return self.max_wait if wait is None else max(0.0, min(wait, self.max_wait))

    def _outcome_ms(self) -> int:
        # Only copies waiting on that one claim read a failure's outcome; they poll at least
        # every _MAX_POLL seconds, so a few of those is plenty (and it must not outlive a wait
        # by much: it is per claim, so it never answers a later redelivery anyway).
        return max(1000, int(self.max_wait * 1000))

    def _unavailable(self, error: BaseException) -> Reply | None:
        reason = describe_error(error)
        if self.on_unavailable == "handle":
            logger.warning(
                "webhook dedupe store %s unreachable (%s); handling the delivery without duplicate detection",
                self._where,
                reason,
            )
            return None
        # `from None`: the redis-py error stays out of the chain (its text is in the message).
        raise DedupeUnavailableError(
            f"webhook dedupe store {self._where} is unreachable ({reason})"
        ) from None

    def _hold(
        self, key: bytes, name: str, pending: bytes, expires_at: float, loop: asyncio.AbstractEventLoop
    ) -> None:
        held = _Held(pending, loop.create_future(), expires_at)
        held.renewer = loop.create_task(self._renew(name, pending))
        self._held[key] = held

    async def _renew(self, name: str, pending: bytes) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                kept = await self._renew_script(keys=[name], args=[pending, self._lease_ms])
            except self._errors as exc:
                logger.warning("could not renew a webhook claim in %s: %s", self._where, describe_error(exc))
                continue
            if not kept:
                logger.warning("a webhook claim ran out while its handlers were still running")
                return
