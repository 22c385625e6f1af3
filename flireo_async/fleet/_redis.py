"""Reaching Redis: the optional ``redis`` package, connections from URLs, readable errors.

Everything the SDK keeps in Redis lives under keys that start with ``flireo:`` and name an
API key only by its fingerprint (a salted hash), never by the key itself.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from .._errors import FlireoError

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisUnavailableError", "connect", "redacted_url", "redis_errors", "require_redis", "NAME"]

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,99}$")
"""What a launch name may look like: letters, digits and ``. _ : @ / -``, 1 to 100 characters."""

_SCHEMES = ("redis", "rediss", "unix")


class RedisUnavailableError(FlireoError):
    """Redis cannot be reached or answered with an error."""


def require_redis() -> Any:
    """The ``redis.asyncio`` module, or a clear error naming the extra to install."""
    try:
        import redis.asyncio
    except ImportError:
        raise FlireoError(
            "the Redis features need the redis package: pip install 'flireo-async[redis]'"
        ) from None
    return redis.asyncio


def redis_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "Redis is not answering" (connection, timeout, OS errors)."""
    import redis.exceptions

    return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError, TimeoutError)


def redacted_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def connect(target: str | Redis, *, timeout: float = 2.0) -> tuple[Redis, bool, str]:
    """``(client, owned, description)`` for a Redis URL or an existing client.

    A client made from a URL is owned (closed by whoever made it); it uses short socket
    timeouts and at most two quick reconnects, so that a lost Redis is noticed in seconds, not
    after redis-py's default ten retries.
    """
    module = require_redis()
    if isinstance(target, str):
        scheme = urlsplit(target).scheme
        if scheme not in _SCHEMES:
            raise FlireoError(
                f"not a Redis URL: {redacted_url(target)!r} (expected redis://, rediss:// or unix://)"
            )
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialBackoff

        # A blocking pool: past its size, commands wait for a free connection instead of
        # failing with "Too many connections" (a launch may have many requests in flight).
        pool = module.BlockingConnectionPool.from_url(
            target,
            max_connections=64,
            timeout=timeout * 5,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
        )
        client = module.Redis(connection_pool=pool)
        return client, True, redacted_url(target)
    if not isinstance(target, module.Redis):
        raise FlireoError(
            f"expected a Redis URL or a redis.asyncio.Redis client, got {type(target).__name__}"
        )
    kwargs = target.connection_pool.connection_kwargs
    where = kwargs.get("path") or f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
    return target, False, f"redis at {where}"


def describe_error(error: BaseException) -> str:
    """A one-line reason from a redis-py error (which never carries the password)."""
    text = str(error).strip() or type(error).__name__
    return " ".join(text.split())
