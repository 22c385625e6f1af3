"""Bulk outbound calling at the rate limit: does ``calls.create_many`` use the allowance fully
without ever hitting it?

FakeFlireo runs in its own process with a limit of 1,200 requests per minute (fixed 60-second
windows, as the API documents); the client paces itself at the same 1,200/minute and launches
2,000 calls. Prints:
- achieved launch rate over the allowed rate (target >= 0.95);
- 429 responses the client received (target 0), counted on its HTTP session;
- destinations dialed more than once, read back from the server's call list (must be 0).

With ``--throughput``: launches per second with pacing off (the fake unlimited, in its own
process), without a store and with the file journal, best of ``--rounds``.

Run: ``.venv/bin/python bench/bulk.py`` (about 100 s at the default settings), or
``.venv/bin/python bench/bulk.py --throughput``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import free_port

from flireo_async import AsyncFlireo
from flireo_async.models import OutboundCallRequest


def start_fake(port: int, rate: int, speed: float) -> tuple[subprocess.Popen[str], str, str]:
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "flireo_async.testing", "--port", str(port)),
            *("--rate-limit", str(rate), "--speed", str(speed)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = key = ""
    while not (url and key):
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the fake server did not start")
        if "FLIREO_BASE_URL=" in line:
            url = line.split("=", 1)[1].strip()
        if "FLIREO_API_KEY=" in line:
            key = line.split("=", 1)[1].strip()
    return proc, url, key


class Counter:
    """Counts every HTTP response the client's session receives, by method, path and status."""

    def __init__(self) -> None:
        self.responses: collections.Counter[tuple[str, str, int]] = collections.Counter()
        self.first_launch: float | None = None
        self.trace = aiohttp.TraceConfig()
        self.trace.on_request_start.append(self._start)
        self.trace.on_request_end.append(self._end)

    async def _start(self, session: Any, context: SimpleNamespace, params: Any) -> None:
        if (
            params.method == "POST"
            and params.url.path.endswith("/calls/outbound")
            and self.first_launch is None
        ):
            self.first_launch = time.perf_counter()

    async def _end(self, session: Any, context: SimpleNamespace, params: Any) -> None:
        self.responses[(params.method, params.url.path.rsplit("/api/v1", 1)[-1], params.response.status)] += 1

    def count(self, status: int) -> int:
        return sum(n for (_, _, s), n in self.responses.items() if s == status)


async def run(calls: int, rate: int, speed: float, in_flight: int) -> None:
    proc, url, key = start_fake(free_port(), rate, speed)
    counter = Counter()
    try:
        async with aiohttp.ClientSession(trace_configs=[counter.trace]) as session:
            client = AsyncFlireo(
                api_key=key, base_url=url, rate_limit=rate, max_concurrency=in_flight, session=session
            )
            agent = await client.agents.create(name="Bench agent")
            leads = (
                OutboundCallRequest(destination=f"+3161{i:07d}", assistant_id=agent.id) for i in range(calls)
            )
            statuses: collections.Counter[str] = collections.Counter()
            done = 0
            async for result in client.calls.create_many(leads, max_in_flight=in_flight):
                statuses[result.status] += 1
                done += 1
                if done % 200 == 0:
                    print(f"  {done} results after {time.perf_counter() - (counter.first_launch or 0):.1f}s")
            finished = time.perf_counter()
            assert counter.first_launch is not None
            elapsed = finished - counter.first_launch
            # Read back what the server dialed (outbound calls carry the destination as caller_phone).
            dialed = collections.Counter([c.caller_phone async for c in client.calls.list(limit=1000)])
    finally:
        proc.terminate()
        proc.wait(10)

    achieved = calls / elapsed * 60
    duplicates = sum(1 for n in dialed.values() if n > 1)
    print()
    print(f"launches:               {calls} ({dict(statuses)}) in {elapsed:.1f}s")
    print(
        f"achieved rate:          {achieved:.0f}/min of {rate}/min allowed = {achieved / rate:.3f} (target >= 0.95)"
    )
    print(f"429s the client saw:    {counter.count(429)} (target 0)")
    print(f"calls on the server:    {sum(dialed.values())}")
    print(f"dialed more than once:  {duplicates} (must be 0)")


async def launches_per_second(
    url: str, key: str, agent: str, calls: int, journal: Path | None, prefix: int
) -> float:
    async with AsyncFlireo(api_key=key, base_url=url, rate_limit=None, max_concurrency=32) as client:
        leads = (
            OutboundCallRequest(destination=f"+31{prefix:02d}{i:07d}", assistant_id=agent)
            for i in range(calls)
        )
        started = time.perf_counter()
        async for _ in client.calls.create_many(leads, max_in_flight=32, journal=journal):
            pass
        return calls / (time.perf_counter() - started)


async def throughput(calls: int, rounds: int) -> None:
    proc, url, key = start_fake(free_port(), 0, 1000.0)
    try:
        async with AsyncFlireo(api_key=key, base_url=url, rate_limit=None) as client:
            agent = (await client.agents.create(name="Bench agent")).id
        best = {"no store": 0.0, "file journal": 0.0}
        prefix = 10
        with tempfile.TemporaryDirectory() as tmp:
            for round_ in range(rounds):
                for name in best:
                    prefix += 1
                    journal = Path(tmp) / f"j{round_}" if name == "file journal" else None
                    rate = await launches_per_second(url, key, agent, calls, journal, prefix)
                    best[name] = max(best[name], rate)
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"{calls} launches, pacing off, best of {rounds} rounds:")
    for name, rate in best.items():
        print(f"  {name:>12}: {rate:7.0f} launches/s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=1200, help="requests per minute, server and client")
    parser.add_argument("--speed", type=float, default=60.0, help="the fake's simulated-time factor")
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--throughput", action="store_true", help="launches/s with pacing off instead")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.throughput:
        asyncio.run(throughput(args.calls, args.rounds))
        return
    print(
        f"bulk launch: {args.calls} calls at {args.rate}/min (fake in its own process, speed {args.speed:g})"
    )
    asyncio.run(run(args.calls, args.rate, args.speed, args.in_flight))


if __name__ == "__main__":
    main()
