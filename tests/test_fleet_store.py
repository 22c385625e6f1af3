"""``RedisLaunchStore`` against a real redis-server: claims, leases, runs, duplicates, status.

Several store objects in one test stand for several workers; the multi-process behaviour is
in ``test_fleet_processes.py``.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from flireo_async import AsyncFlireo
from flireo_async._types import key_fingerprint
from flireo_async.bulk import (
    Busy,
    ClaimLostError,
    Duplicate,
    Granted,
    LaunchResult,
    LaunchStoreError,
    Lead,
    RecordedFailureError,
    Settled,
)
from flireo_async.fleet import RedisLaunchStore, launch_status
from flireo_async.models import OutboundCallRequest
from flireo_async.testing import FakeFlireo

from .conftest import free_port

SCOPE = "scope-1"


async def opened(
    url: str, worker: str, *, launch: str = "spring", lease: float = 30.0, **kw: Any
) -> RedisLaunchStore:
    store = RedisLaunchStore(url, launch, worker=worker, lease=lease, **kw)
    await store.open(SCOPE)
    return store


async def crash(store: RedisLaunchStore) -> None:
    """The worker dies: its heartbeat stops and it never says goodbye."""
    assert store._heartbeat is not None
    store._heartbeat.cancel()
    store._heartbeat = None
    await store._redis.aclose()


def lead(identity: str, index: int = 0) -> Lead:
    return Lead(identity, index, "+31612345678")


async def test_one_claim_per_lead_across_workers(redis_url: str) -> None:
    a, b = await opened(redis_url, "A"), await opened(redis_url, "B")
    try:
        assert a.run == b.run == 1  # B joined A's run
        assert await a.claim(lead("x")) == Granted()
        assert await b.claim(lead("x")) == Busy("A")
        await a.mark_sending(lead("x"))
        assert await b.claim(lead("x")) == Busy("A")
        await a.settle(lead("x"), "launched", call_id="call-1")
        assert await b.claim(lead("x")) == Settled("launched", call_id="call-1", index=0, worker="A")
        # The same identity at another position of the same run: a repeat.
        assert await b.claim(lead("x", 7)) == Duplicate(0)
        assert await a.claim(lead("x", 9)) == Duplicate(0)
    finally:
        await a.close()
        await b.close()


async def test_claims_race_and_exactly_one_wins(redis_url: str) -> None:
    workers = [await opened(redis_url, f"W{i}") for i in range(5)]
    try:
        answers = await asyncio.gather(*(w.claim(lead(f"id{n}", n)) for n in range(200) for w in workers))
        wins = collections.Counter(type(a).__name__ for a in answers)
        assert wins == {"Granted": 200, "Busy": 800}
    finally:
        for w in workers:
            await w.close()


async def test_a_dead_workers_unsent_claims_go_to_others_and_sent_ones_become_unknown(redis_url: str) -> None:
    # Leases short enough for a test, long enough that a busy machine delaying a heartbeat
    # (sent every third of the lease) does not make B, the survivor, look dead too.
    a = await opened(redis_url, "A", lease=0.6)
    b = await opened(redis_url, "B", lease=0.6)
    try:
        assert await a.claim(lead("claimed-only", 0)) == Granted()
        assert await a.claim(lead("being-sent", 1)) == Granted()
        await a.mark_sending(lead("being-sent", 1))
        await crash(a)
        assert await b.claim(lead("claimed-only", 0)) == Busy("A")  # A is still within its lease
        await asyncio.sleep(0.9)  # Redis's clock decides; let it pass the lease
        assert await b.claim(lead("claimed-only", 0)) == Granted()  # never sent: B may dial it
        unknown = await b.claim(lead("being-sent", 1))
        assert isinstance(unknown, Settled)
        assert unknown.status == "unknown"
        assert "stopped before recording an outcome" in (unknown.error or "")
    finally:
        await b.close()


async def test_a_worker_presumed_dead_stops_dialing(redis_url: str) -> None:
    a = await opened(redis_url, "A", lease=0.6)
    b = await opened(redis_url, "B", lease=0.6)
    try:
        assert await a.claim(lead("x")) == Granted()
        assert a._heartbeat is not None
        a._heartbeat.cancel()  # A stalls: no heartbeat, but it is not dead
        await asyncio.sleep(0.9)
        assert await b.claim(lead("x")) == Granted()  # B takes the unsent lead over
        with pytest.raises(ClaimLostError):
            await a.mark_sending(lead("x"))  # A must not dial it any more
        with pytest.raises(ClaimLostError):
            await a.claim(lead("y", 1))
        await b.mark_sending(lead("x"))
    finally:
        a._heartbeat = None
        await a.close()
        await b.close()


async def test_runs_failed_leads_are_retried_by_the_next_run(redis_url: str) -> None:
    a = await opened(redis_url, "A")
    assert await a.claim(lead("f")) == Granted()
    await a.mark_sending(lead("f"))
    await a.settle(lead("f"), "failed", error="RateLimitError: slow down")
    b = await opened(redis_url, "B")  # same run: A is alive
    assert isinstance(settled := await b.claim(lead("f")), Settled)
    assert settled.status == "failed"
    await a.close()
    await b.close()
    c = await opened(redis_url, "C")  # nobody alive: a new run
    assert c.run == 2
    assert await c.claim(lead("f")) == Granted()
    await c.close()


async def test_released_leads_can_be_claimed_again(redis_url: str) -> None:
    a, b = await opened(redis_url, "A"), await opened(redis_url, "B")
    try:
        assert await a.claim(lead("r")) == Granted()
        await a.settle(lead("r"), "released")
        assert await b.claim(lead("r")) == Granted()
    finally:
        await a.close()
        await b.close()


async def test_launches_and_keys_are_separate(redis_url: str) -> None:
    a = await opened(redis_url, "A", launch="one")
    b = RedisLaunchStore(redis_url, "one", worker="B")
    await b.open("another-key")
    c = await opened(redis_url, "C", launch="two")
    try:
        assert await a.claim(lead("x")) == Granted()
        assert await b.claim(lead("x")) == Granted()
        assert await c.claim(lead("x")) == Granted()
    finally:
        for store in (a, b, c):
            await store.close()


async def test_status_counts_every_worker(redis_url: str) -> None:
    a = await opened(redis_url, "A", total=5)
    b = await opened(redis_url, "B")
    for index, (store, status) in enumerate(
        [(a, "launched"), (b, "launched"), (a, "failed"), (b, "unknown")]
    ):
        item = lead(f"l{index}", index)
        assert await store.claim(item) == Granted()
        await store.mark_sending(item)
        await store.settle(item, status)  # type: ignore[arg-type]
    assert await a.claim(lead("l4", 4)) == Granted()
    assert await b.claim(lead("l0", 5)) == Duplicate(0)
    report = await launch_status(redis_url, "spring", scope=SCOPE)
    assert (report.launched, report.failed, report.unknown, report.in_flight) == (2, 1, 1, 1)
    assert report.duplicates == 1
    assert report.total == 5
    assert set(report.workers) == {"A", "B"}
    await a.close()
    await b.close()
    assert (await launch_status(redis_url, "spring", scope=SCOPE)).workers == {}
    with pytest.raises(LaunchStoreError, match="no launch 'autumn'"):
        await launch_status(redis_url, "autumn", scope=SCOPE)


async def test_unreachable_redis_is_a_clear_error() -> None:
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    store = RedisLaunchStore(url, "spring")
    with pytest.raises(LaunchStoreError, match=r"cannot reach redis://:\*\*\*@127\.0\.0\.1") as caught:
        await store.open(SCOPE)
    assert "s3cret" not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    await store.close()


def test_bad_arguments() -> None:
    for launch in ("", " spring", "a b", "x" * 101, None):
        with pytest.raises(ValueError, match="launch name"):
            RedisLaunchStore("redis://127.0.0.1:1/0", launch)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lease"):
        RedisLaunchStore("redis://127.0.0.1:1/0", "ok", lease=0)
    with pytest.raises(Exception, match="not a Redis URL"):
        RedisLaunchStore("http://127.0.0.1:1/0", "ok")


# -- create_many with the Redis store ----------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeFlireo]:
    async with FakeFlireo(rate_limit=None, speed=1000, seed=3) as server:
        yield server


def phone(i: int) -> str:
    return f"+3165{i:07d}"


async def test_workers_in_one_process_split_a_launch(fake: FakeFlireo, redis_url: str) -> None:
    fake.inject("createOutboundCall", latency=(0.0, 0.005), status_429=0.05, retry_after=0)
    async with AsyncFlireo(api_key=fake.api_key, base_url=fake.url, rate_limit=None, max_retries=0) as client:
        agent = (await client.agents.create(name="Fleet")).id
        inputs = [OutboundCallRequest(destination=phone(i), assistant_id=agent) for i in range(300)]
        inputs.append(OutboundCallRequest(destination=phone(7), assistant_id=agent))  # a repeat

        async def worker(name: str) -> list[LaunchResult]:
            store = RedisLaunchStore(redis_url, "split", worker=name)
            return [r async for r in client.calls.create_many(inputs, store=store, max_in_flight=8)]

        runs = await asyncio.gather(*(worker(f"W{i}") for i in range(3)))

    dialed = collections.Counter(
        r.body["destination"] for r in fake.requests_for("createOutboundCall") if r.status == 200
    )
    assert max(dialed.values()) == 1
    for results in runs:  # every worker reports every lead once
        assert sorted(r.index for r in results) == list(range(301))
        assert next(r for r in results if r.index == 300).status == "duplicate"
    own = [r for results in runs for r in results if not r.resumed and r.status != "duplicate"]
    assert sorted(r.index for r in own) == list(range(300))  # each lead settled by exactly one worker
    assert all(len([r for r in results if not r.resumed]) > 0 for results in runs)  # all three worked
    failed_elsewhere = [r for results in runs for r in results if r.resumed and r.status == "failed"]
    assert all(isinstance(r.error, RecordedFailureError) for r in failed_elsewhere)
    assert {r.destination for r in own if r.status == "launched"} == set(dialed)


async def test_no_api_key_or_secret_reaches_redis(fake: FakeFlireo, redis_url: str) -> None:
    async with AsyncFlireo(api_key=fake.api_key, base_url=fake.url, rate_limit=None) as client:
        agent = (await client.agents.create(name="Fleet")).id
        store = RedisLaunchStore(redis_url, "secrets")
        inputs = [OutboundCallRequest(destination=phone(i), assistant_id=agent) for i in range(3)]
        assert len([r async for r in client.calls.create_many(inputs, store=store)]) == 3
    raw = aioredis.Redis.from_url(redis_url)
    try:
        dump = b""
        async for key in raw.scan_iter("*"):
            dump += key
            kind = await raw.type(key)
            if kind == b"hash":
                for field, value in (await raw.hgetall(key)).items():
                    assert isinstance(field, bytes)
                    assert isinstance(value, bytes)
                    dump += field + value
        assert dump
        assert fake.api_key.encode() not in dump
        assert key_fingerprint(fake.api_key).encode() in dump
    finally:
        await raw.aclose()
