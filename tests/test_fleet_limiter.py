"""``RedisRateLimiter`` against a real redis-server: one budget, one cool-down, safe fallback.

Two limiter objects stand for two processes (each has its own connection and local queue).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest
import redis.asyncio as aioredis

from flireo_async import AsyncFlireo, RateLimitError
from flireo_async.fleet import RedisPacer, RedisRateLimiter
from flireo_async.testing import FakeFlireo, RedisServer, busiest_window

from .conftest import free_port


async def held(coro: Awaitable[Any], seconds: float = 0.3) -> bool:
    """Whether ``coro`` is still waiting after ``seconds`` (it is cancelled then)."""
    task = asyncio.ensure_future(coro)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if done:
        task.result()
        return False
    task.cancel()
    return True


async def test_two_processes_share_one_budget(redis_url: str) -> None:
    # 1,200/min over 1.5-second windows: 30 per window (burst 1, then one every ~52 ms).
    pacers = [RedisRateLimiter(redis_url, period=1.5, margin=0).pacer("k", 1200) for _ in range(2)]
    granted: list[float] = []

    async def worker(pacer: RedisPacer) -> None:
        deadline = time.monotonic() + 2.2
        while time.monotonic() < deadline:
            await pacer.acquire()
            granted.append(time.monotonic())

    try:
        await asyncio.gather(*(worker(p) for p in pacers))
    finally:
        for p in pacers:
            await p.aclose()
    assert busiest_window(granted, 1.5) <= 30
    assert len(granted) >= 35  # the budget is used, not just respected
    assert all(p.per_minute == 1200 for p in pacers)


async def test_a_429_cools_everyone_down_capped_by_max_retry_wait(redis_url: str) -> None:
    async with FakeFlireo(rate_limit=None) as fake:
        fake.inject("getOrganization", status_429=1.0, retry_after=3600, times=1)
        limiters = [RedisRateLimiter(redis_url) for _ in range(2)]
        clients = [
            AsyncFlireo(api_key=fake.api_key, base_url=fake.url, rate_limiter=lim, max_retry_wait=2)
            for lim in limiters
        ]
        try:
            with pytest.raises(RateLimitError) as caught:
                await clients[0].organization.get()
            assert caught.value.retry_after == 3600
            raw = aioredis.Redis.from_url(redis_url)
            keys = [k async for k in raw.scan_iter("flireo:rl:*")]
            state = next(k for k in keys if not k.endswith((b":members",)))
            cool = int(await raw.hget(state, "cool") or 0)
            seconds, micros = await raw.time()
            await raw.aclose()
            left = cool - (seconds * 1000 + micros // 1000)
            assert 0 < left <= 2000  # capped at max_retry_wait, not 3600 s
            # The other process, which never saw the 429, is held too.
            other = clients[1]._transport.pacer
            assert await held(other.acquire())
        finally:
            for c in clients:
                await c.close()


async def test_headers_lower_the_shared_budget_and_remaining_zero_cools_down(redis_url: str) -> None:
    a, b = (RedisRateLimiter(redis_url).pacer("k", 100) for _ in range(2))
    try:
        await a.acquire()
        a.observe({"X-RateLimit-Limit": "40", "X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "0"})
        await asyncio.sleep(0.05)  # the update goes out in the background
        await b.acquire()
        assert b.per_minute == 40
        reset = int(time.time()) + 30
        a.observe({"X-RateLimit-Limit": "40", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})
        await asyncio.sleep(0.05)
        assert await held(b.acquire())
    finally:
        await a.aclose()
        await b.aclose()


async def test_per_call_windows_are_shared(redis_url: str) -> None:
    a, b = (RedisRateLimiter(redis_url).pacer("k", None) for _ in range(2))
    try:
        for pacer in (a, b, a):
            await pacer.acquire_key("controlCall:call-1", 3, 60)
        assert await held(b.acquire_key("controlCall:call-1", 3, 60))
        await a.acquire_key("controlCall:call-2", 3, 60)  # other calls are not affected
    finally:
        await a.aclose()
        await b.aclose()


async def test_losing_redis_falls_back_to_a_share_of_the_budget_never_to_no_limit() -> None:
    with RedisServer() as server:
        pacers = [RedisRateLimiter(server.url).pacer("k", 600) for _ in range(3)]
        for _ in range(2):  # the second round sees all three
            for p in pacers:
                await p.acquire()
        server.kill()
        try:
            lone = pacers[0]
            await lone.acquire()
            assert lone.falling_back
            assert lone._fallback is not None
            assert lone._fallback.per_minute == 200  # 600 shared by the 3 workers seen
            burst = 200 // 20
            for _ in range(burst - 1):
                await lone.acquire()
            assert await held(lone.acquire(), 0.2)  # still paced
        finally:
            for p in pacers:
                await p.aclose()


async def test_a_limiter_that_never_reached_redis_paces_at_a_quarter() -> None:
    pacer = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0").pacer("k", 100)
    try:
        await pacer.acquire()
        assert pacer._fallback is not None
        assert pacer._fallback.per_minute == 25
    finally:
        await pacer.aclose()


async def test_redis_coming_back_restores_the_shared_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    with RedisServer(port=port) as server:
        pacer = RedisRateLimiter(server.url).pacer("k", 600)
        try:
            await pacer.acquire()
            server.kill()
            await pacer.acquire()
            assert pacer.falling_back
            server.start()
            monkeypatch.setattr(pacer, "_retry_at", 0.0)  # the next try at Redis is due
            await pacer.acquire()
            assert not pacer.falling_back
        finally:
            await pacer.aclose()


@pytest.fixture
async def fake() -> AsyncIterator[FakeFlireo]:
    async with FakeFlireo(rate_limit=None) as server:
        yield server


async def test_clients_work_through_the_redis_limiter(fake: FakeFlireo, redis_url: str) -> None:
    limiter = RedisRateLimiter(redis_url)
    async with AsyncFlireo(api_key=fake.api_key, base_url=fake.url, rate_limiter=limiter) as client:
        agent = await client.agents.create(name="Paced")
        assert (await client.agents.get(agent.id)).name == "Paced"
        derived = client.with_options(timeout=5)
        assert derived._transport.pacer is client._transport.pacer
        assert isinstance(client._transport.pacer, RedisPacer)
    raw = aioredis.Redis.from_url(redis_url)
    try:
        keys = [k async for k in raw.scan_iter("*")]
        assert keys
        assert all(fake.api_key.encode() not in k for k in keys)
    finally:
        await raw.aclose()
