"""Webhook router throughput: signed tool-call deliveries through ``WebhookRouter``.

The router runs in its own process (``bench/_webhook_server.py``); this process is the load
generator: one keep-alive aiohttp session, many requests in flight, every delivery signed
before the clock starts and unique (so duplicate detection never short-cuts a request). Each
delivery is verified, decoded into ``ToolCallsMessage``, dispatched to a tool and answered.

Figures (best of ``--rounds`` alternating rounds):

1. The router's own work: server CPU time per delivery (``time.process_time()`` in the server
   process) on the router endpoint minus the same on a bare aiohttp endpoint that reads the
   body and answers a canned reply of the same shape. Deliveries per second of one core at
   that cost. Target >= 5,000/s.
2. The server's total CPU per delivery (aiohttp's HTTP work included) and the generator's CPU
   per delivery, reported apart: on two shared cores both compete for the same CPUs.
3. End to end deliveries per second as the generator sees them.
4. Latency at a paced 1,000 deliveries/s: p50 and p99 from the scheduled send time to the
   answer, router vs the bare endpoint; "added" is the difference of the p99s.
   Target (ours): added p99 <= 5 ms.

Run: ``.venv/bin/python bench/webhooks.py [--deliveries 6000] [--concurrency 64]
[--rounds 3] [--profile]`` (``--profile`` prints the server's cProfile of one router round).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import free_port

from flireo_async.webhooks import sign

HERE = Path(__file__).resolve().parent
SECRET = "whsec_bench_0c1d2e3f4a5b"
PATH = "/flireo/webhook"
PACED_RATE = 1000

Delivery = tuple[bytes, dict[str, str]]


def deliveries(n: int, tag: str) -> list[Delivery]:
    """``n`` distinct signed tool-call deliveries, as the platform sends them."""
    out = []
    now = int(time.time())
    for i in range(n):
        payload = {
            "message": {
                "type": "tool-calls",
                "timestamp": "2026-01-07T12:00:00.000Z",
                "call": {"id": f"{tag}-{i:07d}", "type": "inbound_phone_call", "status": "in-progress"},
                "phone_number": {"id": "c4a8e2f1-3b6d-4f9a-8e7c-1d2b3a4c5e6f", "number": "+31850835037"},
                "customer": {"number": "+31612345678"},
                "tool_call_list": [
                    {
                        "id": f"call_{tag}_{i}",
                        "type": "function",
                        "function": {"name": "lookup_customer", "arguments": {"phone": "+31612345678"}},
                    }
                ],
            }
        }
        body = json.dumps(payload).encode()
        out.append((body, sign(body, SECRET, now, event="tool-calls")))
    return out


async def server_cpu(session: aiohttp.ClientSession, base: str) -> float:
    async with session.get(f"{base}/stats") as response:
        return float((await response.json())["cpu"])


async def wait_up(session: aiohttp.ClientSession, base: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            await server_cpu(session, base)
            return
        except aiohttp.ClientConnectionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def send(session: aiohttp.ClientSession, url: str, delivery: Delivery) -> None:
    body, headers = delivery
    async with session.post(url, data=body, headers=headers) as response:
        answer = await response.read()
        if response.status != 200 or not answer.startswith(b'{"results":[{"toolCallId"'):
            raise RuntimeError(f"unexpected answer {response.status}: {answer[:200]!r}")


async def blast(
    session: aiohttp.ClientSession, base: str, path: str, batch: list[Delivery], concurrency: int
) -> dict[str, float]:
    """Send ``batch`` with ``concurrency`` requests in flight; rates and CPU per delivery."""
    url = base + path
    queue = iter(batch)

    async def worker() -> None:
        for delivery in queue:
            await send(session, url, delivery)

    cpu_before = await server_cpu(session, base)
    wall, own = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, own = time.perf_counter() - wall, time.process_time() - own
    cpu_after = await server_cpu(session, base)
    n = len(batch)
    return {"rate": n / wall, "server_cpu": (cpu_after - cpu_before) / n, "generator_cpu": own / n}


async def paced(session: aiohttp.ClientSession, url: str, batch: list[Delivery], rate: int) -> list[float]:
    """Send at ``rate`` per second on a fixed schedule; latency of each from its send slot."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []

    async def one(delivery: Delivery, slot: float) -> None:
        await send(session, url, delivery)
        latencies.append(loop.time() - slot)

    tasks = []
    start = loop.time() + 0.05
    for i, delivery in enumerate(batch):
        slot = start + i / rate
        delay = slot - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(delivery, slot)))
    await asyncio.gather(*tasks)
    return sorted(latencies)


class _Request:
    """What ``WebhookRouter.handle`` reads of an aiohttp request: the body and the headers."""

    def __init__(self, delivery: Delivery) -> None:
        self._body = delivery[0]
        self.headers = CIMultiDictProxy(CIMultiDict(delivery[1]))

    async def read(self) -> bytes:
        return self._body


async def direct(n: int, rounds: int) -> float:
    """CPU seconds per delivery of ``router.handle`` called in this process without HTTP (the
    same router and tool as the server's), best of ``rounds``."""
    sys.path.insert(0, str(HERE))
    from _webhook_server import build_router

    router = build_router(SECRET)
    best = float("inf")
    for r in range(rounds):
        requests = [_Request(d) for d in deliveries(n, f"d{r}")]
        started = time.process_time()
        for request in requests:
            response = await router.handle(request)  # type: ignore[arg-type]
            if response.status != 200:
                raise RuntimeError(f"unexpected answer {response.status}")
        best = min(best, (time.process_time() - started) / n)
    return best


def percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(len(values) * fraction))]


async def run(args: argparse.Namespace) -> None:
    in_process = await direct(args.deliveries, args.rounds)
    print(
        f"WebhookRouter.handle() called directly, no HTTP: {in_process * 1e6:.0f} µs CPU per delivery "
        f"= {1 / in_process:,.0f} deliveries/s per core",
        flush=True,
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, str(HERE / "_webhook_server.py"), str(port), SECRET])
    try:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            await wait_up(session, base)
            await blast(session, base, PATH, deliveries(1000, "warm"), args.concurrency)
            await blast(session, base, "/baseline", deliveries(1000, "warmb"), args.concurrency)

            router: list[dict[str, float]] = []
            bare: list[dict[str, float]] = []
            for r in range(args.rounds):
                bare.append(
                    await blast(
                        session, base, "/baseline", deliveries(args.deliveries, f"b{r}"), args.concurrency
                    )
                )
                router.append(
                    await blast(session, base, PATH, deliveries(args.deliveries, f"r{r}"), args.concurrency)
                )
                print(
                    f"  round {r + 1}: router {router[-1]['rate']:,.0f}/s end to end, server CPU "
                    f"{router[-1]['server_cpu'] * 1e6:.0f} µs; bare endpoint {bare[-1]['rate']:,.0f}/s, "
                    f"{bare[-1]['server_cpu'] * 1e6:.0f} µs",
                    flush=True,
                )

            paced_router: list[list[float]] = []
            paced_bare: list[list[float]] = []
            n_paced = int(PACED_RATE * args.paced_seconds)
            for r in range(args.rounds):
                paced_bare.append(
                    await paced(session, base + "/baseline", deliveries(n_paced, f"pb{r}"), PACED_RATE)
                )
                paced_router.append(
                    await paced(session, base + PATH, deliveries(n_paced, f"pr{r}"), PACED_RATE)
                )

            profile = None
            if args.profile:
                await session.post(f"{base}/profile/start")
                await blast(session, base, PATH, deliveries(args.deliveries, "prof"), args.concurrency)
                async with session.post(f"{base}/profile/stop") as response:
                    profile = await response.text()
    finally:
        proc.terminate()
        proc.wait(10)

    router_cpu = min(r["server_cpu"] for r in router)
    bare_cpu = min(r["server_cpu"] for r in bare)
    own = router_cpu - bare_cpu
    best = max(router, key=lambda r: r["rate"])
    p99_router = min(percentile(lat, 0.99) for lat in paced_router)
    p99_bare = min(percentile(lat, 0.99) for lat in paced_bare)
    p50_router = min(percentile(lat, 0.5) for lat in paced_router)
    p50_bare = min(percentile(lat, 0.5) for lat in paced_bare)
    print()
    print(
        f"Router's own work (verify + decode + dispatch + answer): {own * 1e6:.0f} µs CPU per delivery "
        f"= {1 / own:,.0f} deliveries/s per core (target >= 5,000/s)"
    )
    print(
        f"Server CPU per delivery: router endpoint {router_cpu * 1e6:.0f} µs "
        f"({1 / router_cpu:,.0f}/s per core), bare aiohttp endpoint {bare_cpu * 1e6:.0f} µs"
    )
    print(
        f"End to end, generator in its own process: {best['rate']:,.0f} deliveries/s "
        f"(bare endpoint {max(b['rate'] for b in bare):,.0f}/s); generator CPU "
        f"{best['generator_cpu'] * 1e6:.0f} µs per delivery"
    )
    print(
        f"Paced {PACED_RATE:,}/s for {args.paced_seconds:g} s: router p50 {p50_router * 1e3:.2f} ms, "
        f"p99 {p99_router * 1e3:.2f} ms; bare p50 {p50_bare * 1e3:.2f} ms, p99 {p99_bare * 1e3:.2f} ms; "
        f"added p99 {(p99_router - p99_bare) * 1e3:.2f} ms (target <= 5 ms)"
    )
    if profile is not None:
        print()
        print(profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--paced-seconds", type=float, default=3.0)
    parser.add_argument("--profile", action="store_true")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
