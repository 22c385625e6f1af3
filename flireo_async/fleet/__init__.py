"""Running on many processes and hosts: shared state in Redis.

Several service replicas or ``flireo calls launch`` workers on one API key share:

- one rate-limit budget and one 429 cool-down: :class:`RedisRateLimiter`, passed as
  ``AsyncFlireo(rate_limiter=RedisRateLimiter(url))``;
- one record of who was dialed: :class:`RedisLaunchStore`, passed as
  ``client.calls.create_many(leads, store=RedisLaunchStore(url, launch="name"))``; every lead
  is claimed by exactly one worker and dialed at most once fleet-wide;
- :func:`launch_status`: the combined progress of a launch.

Any Redis-protocol server works (Redis 6 or newer, Valkey). Needs the ``redis`` extra:
``pip install 'flireo-async[redis]'``. Redis keys start with ``flireo:`` and name the API key
only by a salted hash; the key itself never reaches Redis. Losing Redis never means dialing
without a record or sending without pacing: see each class.
"""

from ._limiter import RedisPacer, RedisRateLimiter
from ._redis import RedisUnavailableError, redacted_url
from ._store import LaunchStatusReport, RedisLaunchStore, launch_status

__all__ = [
    "RedisRateLimiter",
    "RedisPacer",
    "RedisLaunchStore",
    "LaunchStatusReport",
    "launch_status",
    "RedisUnavailableError",
    "redacted_url",
]
