"""A fleet of launch workers against one API key: does one shared budget hold?

FakeFlireo runs in its own process with its limit at ``--rate`` requests per minute (fixed
60-second windows, as the API documents), a real redis-server in another. Prints:

1. Shared: ``--workers`` processes launch ``--leads`` leads together through one Redis launch
   store and one ``RedisRateLimiter``: achieved/allowed rate (target >= 0.95), 429s (target 0),
   double dials (must be 0), the busiest 60-second window.
2. Contrast: the same processes with only in-process limiters (each paces itself to the whole
   budget): how many 429s they provoke, and how long the same launch takes.
3. Limiter alone: four processes of GETs through ``RedisRateLimiter`` at 600/min for 60 s; the
   busiest 60-second window at the server (must be <= 600).
4. Store overhead: launches per second in one process with pacing off, without a store, with
   the file journal and with the Redis store (best of alternating rounds).

Run: ``.venv/bin/python bench/fleet.py`` (about five minutes at the defaults).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flireo_async import AsyncFlireo
from flireo_async.bulk import FileLaunchStore
from flireo_async.fleet import RedisLaunchStore
from flireo_async.models import OutboundCallRequest
from flireo_async.testing import FakeProcess, RedisServer, busiest_window

WORKER = textwrap.dedent(
    """
    import asyncio, collections, json, sys, time
    from flireo_async import AsyncFlireo
    from flireo_async.fleet import RedisLaunchStore, RedisRateLimiter
    from flireo_async.models import OutboundCallRequest

    async def main(url, key, redis_url, launch, agent, leads, rate, shared, seconds):
        limiter = RedisRateLimiter(redis_url) if shared else None
        statuses = collections.Counter()
        errors = collections.Counter()
        requests = (
            OutboundCallRequest(destination=f"+3167{i:07d}", assistant_id=agent) for i in range(leads)
        )
        async with AsyncFlireo(
            api_key=key, base_url=url, rate_limit=rate, rate_limiter=limiter, max_concurrency=16
        ) as client:
            store = RedisLaunchStore(redis_url, launch)
            deadline = time.monotonic() + seconds
            launches = client.calls.create_many(requests, store=store, max_in_flight=16)
            async for result in launches:
                statuses[result.status + (" (recorded)" if result.resumed else "")] += 1
                if result.error is not None:
                    errors[type(result.error).__name__] += 1
                if time.monotonic() > deadline:
                    break
            await launches.aclose()
        print(json.dumps({"statuses": statuses, "errors": errors}))

    asyncio.run(main(*sys.argv[1:6], int(sys.argv[6]), int(sys.argv[7]), sys.argv[8] == "1", float(sys.argv[9])))
    """
)

GETTER = textwrap.dedent(
    """
    import asyncio, sys, time
    from flireo_async import AsyncFlireo
    from flireo_async.fleet import RedisRateLimiter

    async def main(url, key, redis_url, seconds):
        limiter = RedisRateLimiter(redis_url)
        async with AsyncFlireo(api_key=key, base_url=url, rate_limit=600, rate_limiter=limiter) as client:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                await client.organization.get()

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))
    """
)


async def create_agent(fake: FakeProcess) -> str:
    async with AsyncFlireo(api_key=fake.api_key, base_url=fake.url, rate_limit=None) as client:
        return (await client.agents.create(name="Fleet bench agent")).id


def run_workers(script: str, count: int, *args: str) -> list[dict[str, Any]]:
    procs = [
        subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    outputs = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=1800)
            outputs.append(json.loads(out) if out.strip() else {})
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return outputs


def dials(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["operation_id"] == "createOutboundCall"]


def fleet(args: argparse.Namespace, redis: RedisServer) -> None:
    with FakeProcess(rate_limit=args.rate, speed=60) as fake:
        agent = asyncio.run(create_agent(fake))
        common = (fake.url, fake.api_key, redis.url)
        print(f"1. shared: {args.workers} workers, {args.leads} leads, server limit {args.rate}/min")
        started = time.time()
        outputs = run_workers(
            WORKER, args.workers, *common, "shared", agent, str(args.leads), str(args.rate), "1", "1e9"
        )
        records = fake.records()
    sent = [r for r in dials(records) if r["status"] != 429]
    times = [r["at"] for r in records if r["at"] >= started]
    elapsed = max(r["at"] for r in sent) - min(r["at"] for r in sent)
    per_destination = collections.Counter(r["body"]["destination"] for r in sent)
    achieved = len(sent) / elapsed * 60
    combined: collections.Counter[str] = collections.Counter()
    for out in outputs:
        combined.update(out.get("statuses", {}))
    print(f"   outcomes (all workers): {dict(combined)}")
    print(f"   dials: {len(sent)} in {elapsed:.1f}s")
    print(
        f"   achieved/allowed:       {achieved:.0f}/{args.rate} per min = {achieved / args.rate:.3f} (target >= 0.95)"
    )
    print(f"   429s at the server:     {sum(r['status'] == 429 for r in records)} (target 0)")
    print(f"   double dials:           {sum(n > 1 for n in per_destination.values())} (must be 0)")
    print(f"   busiest 60 s window:    {busiest_window(times, 60.0)} requests (limit {args.rate})")

    with FakeProcess(rate_limit=args.rate, speed=60) as fake:
        agent = asyncio.run(create_agent(fake))
        print(f"2. contrast: the same {args.workers} workers with in-process limiters")
        started = time.time()
        outputs = run_workers(
            WORKER,
            args.workers,
            fake.url,
            fake.api_key,
            redis.url,
            "contrast",
            agent,
            str(args.leads),
            str(args.rate),
            "0",
            str(args.contrast_seconds or 1e9),
        )
        took = time.time() - started
        records = fake.records()
    errors: collections.Counter[str] = collections.Counter()
    statuses: collections.Counter[str] = collections.Counter()
    for out in outputs:
        errors.update(out.get("errors", {}))
        statuses.update(out.get("statuses", {}))
    sent = [r for r in dials(records) if r["status"] != 429]
    print(f"   429s at the server:     {sum(r['status'] == 429 for r in records)} of {len(records)} requests")
    print(f"   outcomes (all workers): {dict(statuses)}; errors seen: {dict(errors)}")
    print(f"   dials: {len(sent)} in {took:.1f}s (the workers stall in cool-downs after each 429)")


def limiter_minute(redis: RedisServer, seconds: float) -> None:
    print(f"3. limiter: 4 processes of GETs at a shared 600/min for {seconds:g}s")
    with FakeProcess(rate_limit=None) as fake:
        run_workers(GETTER, 4, fake.url, fake.api_key, redis.url, str(seconds))
        arrivals = [r["at"] for r in fake.records() if r["operation_id"] == "getOrganization"]
    print(
        f"   requests: {len(arrivals)}; busiest 60 s window: {busiest_window(arrivals, 60.0)} (must be <= 600)"
    )


async def launches_per_second(fake: FakeProcess, agent: str, store: Any, leads: int, prefix: int) -> float:
    async with AsyncFlireo(
        api_key=fake.api_key, base_url=fake.url, rate_limit=None, max_concurrency=32
    ) as client:
        requests = (
            OutboundCallRequest(destination=f"+31{prefix:02d}{i:07d}", assistant_id=agent)
            for i in range(leads)
        )
        started = time.perf_counter()
        async for _ in client.calls.create_many(requests, store=store, max_in_flight=32):
            pass
        return leads / (time.perf_counter() - started)


def overhead(redis: RedisServer, leads: int, rounds: int) -> None:
    print(f"4. store overhead: {leads} launches, pacing off, one process (best of {rounds} rounds)")
    best: dict[str, float] = collections.defaultdict(float)
    with FakeProcess(rate_limit=None, speed=1000) as fake, tempfile.TemporaryDirectory() as tmp:
        agent = asyncio.run(create_agent(fake))
        prefix = 10
        for round_ in range(rounds):
            for name in ("none", "file", "redis"):
                prefix += 1
                store: Any = {
                    "none": None,
                    "file": FileLaunchStore(Path(tmp) / f"j{round_}"),
                    "redis": RedisLaunchStore(redis.url, f"overhead-{round_}"),
                }[name]
                rate = asyncio.run(launches_per_second(fake, agent, store, leads, prefix))
                best[name] = max(best[name], rate)
    for name in ("none", "file", "redis"):
        print(f"   {name:>5}: {best[name]:7.0f} launches/s ({best[name] / best['none']:.2f} of no store)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--rate", type=int, default=1200, help="the server's limit and the shared budget, per min"
    )
    parser.add_argument(
        "--contrast-seconds",
        type=float,
        default=0.0,
        help="stop the contrast run early (0: run it to the end)",
    )
    parser.add_argument("--limiter-seconds", type=float, default=60.0)
    parser.add_argument("--overhead-leads", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=("fleet", "limiter", "overhead"), help="run one part")
    args = parser.parse_args()
    with RedisServer() as redis:
        if args.only in (None, "fleet"):
            fleet(args, redis)
        if args.only in (None, "limiter"):
            limiter_minute(redis, args.limiter_seconds)
        if args.only in (None, "overhead"):
            overhead(redis, args.overhead_leads, args.rounds)


if __name__ == "__main__":
    main()
