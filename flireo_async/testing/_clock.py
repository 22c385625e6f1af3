"""The fake's simulated clock: real time, optionally running ``speed`` times faster.

Everything the fake *simulates* (call phases and durations, resource timestamps, domain
verification) runs on this clock, so that a ``speed=100`` server finishes a three-minute call in
1.8 real seconds and the call's ``started_at``/``ended_at``/``duration_seconds`` still agree with
each other. Rate limits and injected latency are about wall time and never use it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone

__all__ = ["SimClock", "format_timestamp", "parse_timestamp"]


def format_timestamp(moment: float | datetime) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``, the form the API sends:
    ``2026-01-07T10:00:00.000Z``."""
    if isinstance(moment, datetime):
        dt = moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    else:
        dt = datetime.fromtimestamp(moment, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO 8601 date-time (``Z`` or an offset; naive values are taken as UTC)."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    dt = datetime.fromisoformat(value)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


class SimClock:
    """Simulated Unix time: starts at the real time and runs ``speed`` times as fast."""

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = float(speed)
        self._wall0 = time.time()
        self._mono0 = time.monotonic()

    def now(self) -> float:
        """Simulated Unix seconds."""
        return self._wall0 + (time.monotonic() - self._mono0) * self.speed

    def advance(self, sim_seconds: float) -> None:
        """Jump simulated time forward (timestamps, domain verification). Calls already
        running keep their real-time schedule."""
        self._wall0 += max(0.0, sim_seconds)

    def now_datetime(self) -> datetime:
        """Simulated now as an aware UTC datetime."""
        return datetime.fromtimestamp(self.now(), tz=timezone.utc)

    def iso(self) -> str:
        """Simulated now in the API's timestamp format."""
        return format_timestamp(self.now())

    def real_seconds(self, sim_seconds: float) -> float:
        """How long ``sim_seconds`` of simulated time take in real time."""
        return max(0.0, sim_seconds) / self.speed

    async def sleep(self, sim_seconds: float) -> None:
        """Sleep for ``sim_seconds`` of simulated time."""
        await asyncio.sleep(self.real_seconds(sim_seconds))
