"""SDK overhead against raw aiohttp: the same GET and JSON decode on the same local server.

The server runs in a separate process. Both sides make 5,000 requests at concurrency 1 and at
concurrency 50, pacing off. Raw aiohttp does ``session.get`` + ``resp.json()``; the SDK does
``client.agents.get(id)``, which also unwraps the envelope and decodes into attrs models.
Target: SDK time / raw time <= 1.3 at both concurrencies (<= 1.15 at 50). Also printed: this
process's CPU time per request on each side (best of the rounds), and the SDK's extra CPU when
the same request is made without building models (the result left as parsed JSON).

Run: ``.venv/bin/python bench/overhead.py [--requests 5000]``
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import attrs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import server

from flireo_async import AsyncFlireo
from flireo_async._generated.operations import GET_AGENT

AGENT_ID = "3f6d2a9e-8c41-4b7a-9e2d-5a1c7f0b6e13"


async def run_raw(base: str, n: int, concurrency: int) -> float:
    url = f"{base}/assistants/{AGENT_ID}"
    headers = {"Authorization": "Bearer bench", "Accept": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        queue = iter(range(n))

        async def worker() -> None:
            for _ in queue:
                async with session.get(url, headers=headers) as resp:
                    resp.raise_for_status()
                    await resp.json()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start


async def run_sdk(base: str, n: int, concurrency: int, *, models: bool = True) -> float:
    """``client.agents.get`` ``n`` times; ``models=False`` makes the same request through the
    SDK's path (gate, pacer, URL, retries, envelope) with the result left as parsed JSON, which
    shows what building the models costs."""
    undecoded = attrs.evolve(GET_AGENT, result_type=Any)
    async with AsyncFlireo(
        api_key="bench", base_url=base, rate_limit=None, max_concurrency=concurrency
    ) as client:
        queue = iter(range(n))

        async def worker() -> None:
            for _ in queue:
                if models:
                    await client.agents.get(AGENT_ID)
                else:
                    await client.request(undecoded, path=(AGENT_ID,))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds; the best of each is kept")
    args = parser.parse_args()
    with server() as base:
        await run_raw(base, 200, 10)  # warm up both paths and the server
        await run_sdk(base, 200, 10)
        print(f"{args.requests} GET requests, best of {args.rounds} alternating rounds")
        print(
            f"{'concurrency':>11} {'raw aiohttp':>12} {'flireo-async':>13} {'ratio':>6}"
            "   client CPU per request: raw, SDK, SDK - raw"
        )
        for concurrency in (1, 50):
            raw = sdk = float("inf")
            # This process's CPU time too: the wall-clock ratio also carries the server's share.
            raw_cpu = sdk_cpu = bare_cpu = float("inf")
            for _ in range(args.rounds):
                cpu = time.process_time()
                raw = min(raw, await run_raw(base, args.requests, concurrency))
                raw_cpu = min(raw_cpu, time.process_time() - cpu)
                cpu = time.process_time()
                sdk = min(sdk, await run_sdk(base, args.requests, concurrency))
                sdk_cpu = min(sdk_cpu, time.process_time() - cpu)
                cpu = time.process_time()
                await run_sdk(base, args.requests, concurrency, models=False)
                bare_cpu = min(bare_cpu, time.process_time() - cpu)
            per = 1e6 / args.requests
            print(
                f"{concurrency:>11} {raw:>11.2f}s {sdk:>12.2f}s {sdk / raw:>6.2f}"
                f"   {raw_cpu * per:.0f} µs, {sdk_cpu * per:.0f} µs, {(sdk_cpu - raw_cpu) * per:+.0f} µs"
                f" (without building models: {(bare_cpu - raw_cpu) * per:+.0f} µs)"
            )


if __name__ == "__main__":
    asyncio.run(main())
