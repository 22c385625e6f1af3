"""A virtual clock for the client: waits are recorded and skipped, never spent."""

from __future__ import annotations

import asyncio


class VirtualClock:
    """``monotonic()`` advances only when something sleeps on this clock.

    Every sleep is recorded in :attr:`sleeps` and moves the time forward at once (then yields
    to the event loop), so a test can assert how long the client chose to wait — a Retry-After
    honoured, a pacing gap — in microseconds of real time. Sleeps are serialised by the client
    (its rate limiter queues waiters), so the total is the simulated elapsed time.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.start = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)

    @property
    def elapsed(self) -> float:
        return self.now - self.start
