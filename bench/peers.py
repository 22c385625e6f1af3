"""flireo-async next to its peers on the same local server (in its own process), pacing off.

1. ``GET /assistants/{id}`` + JSON decode, 2,000 requests at concurrency 1 and 50: raw aiohttp
   (``session.get`` + ``resp.json()``) vs ``client.agents.get``. Target at 50: <= 1.15x.
2. 100,000 usage logs in pages of 1,000, prefetch 4, no added latency: raw aiohttp fetching the
   same pages four ahead and parsing them with the same JSON parser (``flireo_async._json``) vs
   ``async for log in client.usage.list(...)`` (which also decodes every row into a model).
   Printed as throughput of the SDK over raw. Target: >= 0.6. Also printed: the SDK's paging
   with the rows left as parsed JSON (what the models cost is the difference).

With ``--with-generated``, a third peer: a client that openapi-python-client generates from our
spec (``flireo_async/_generated/openapi.json``), built and run in a temporary venv (it installs
openapi-python-client and python-dateutil from the package index; httpx underneath), for the
same GETs and the same export with the same prefetch.

Best of ``--rounds`` alternating rounds (the machine is shared).

Run: ``.venv/bin/python bench/peers.py [--rounds 3] [--with-generated]``
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import count_pages_ahead, run_for_json, server
from overhead import run_raw, run_sdk

from flireo_async import AsyncFlireo, _json

PAGE = 1000
PREFETCH = 4


async def export_raw(base: str, rows: int) -> float:
    headers = {"Authorization": "Bearer bench", "Accept": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def page(offset: int) -> list[dict[str, object]]:
            async with session.get(
                f"{base}/usage", params={"limit": PAGE, "offset": offset}, headers=headers
            ) as resp:
                resp.raise_for_status()
                logs: list[dict[str, object]] = _json.loads(await resp.read())["logs"]
                return logs

        return await count_pages_ahead(page, rows, PAGE, PREFETCH)


async def export_sdk(base: str, rows: int) -> float:
    async with AsyncFlireo(api_key="bench", base_url=base, rate_limit=None, prefetch=PREFETCH) as client:
        start = time.perf_counter()
        count = 0
        async for _log in client.usage.list(limit=PAGE):
            count += 1
        assert count == rows, count
        return time.perf_counter() - start


async def export_sdk_undecoded(base: str, rows: int) -> float:
    """The SDK's paging (pages fetched ahead, envelope, page shell) with the rows left as parsed
    JSON, which shows what building the models costs."""
    async with AsyncFlireo(api_key="bench", base_url=base, rate_limit=None, prefetch=PREFETCH) as client:
        listing = client.usage.list(limit=PAGE)
        start = time.perf_counter()
        count = 0
        async for page in listing._pages(listing._rows_at):
            for _row in page.items:
                count += 1
        assert count == rows, count
        return time.perf_counter() - start


HERE = Path(__file__).resolve().parent
SPEC = HERE.parent / "flireo_async" / "_generated" / "openapi.json"


def build_generated(tmp: Path) -> tuple[Path, Path]:
    """A venv with openapi-python-client, and the client it generates from the spec."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "openapi-python-client", "python-dateutil"],
        check=True,
    )
    package = tmp / "generated_flireo"
    subprocess.run(
        [
            *(str(venv / "bin" / "openapi-python-client"), "generate", "--path", str(SPEC)),
            *("--output-path", str(package), "--meta", "none"),
        ],
        check=True,
        capture_output=True,
    )
    return python, package


def run_generated(
    python: Path, package: Path, base: str, requests: int, rows: int, rounds: int
) -> dict[str, float]:
    times: dict[str, float] = run_for_json(
        [
            str(python),
            str(HERE / "_generated_peer.py"),
            str(package),
            base,
            *map(str, (requests, rows, rounds)),
        ]
    )
    return times


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--with-generated", action="store_true", help="add an openapi-python-client client")
    args = parser.parse_args()
    print(f"JSON backend: {_json.backend()}")
    with tempfile.TemporaryDirectory() as tmp, server("--rows", str(args.rows)) as base:
        generated = build_generated(Path(tmp)) if args.with_generated else None
        raws: dict[str, float] = {}
        await run_raw(base, 200, 10)
        await run_sdk(base, 200, 10)
        print(f"{args.requests} GET requests, best of {args.rounds} alternating rounds")
        for concurrency, target in ((1, ""), (50, " (target <= 1.15)")):
            raw = sdk = float("inf")
            for _ in range(args.rounds):
                raw = min(raw, await run_raw(base, args.requests, concurrency))
                sdk = min(sdk, await run_sdk(base, args.requests, concurrency))
            raws[f"get_{concurrency}"] = raw
            print(
                f"  concurrency {concurrency:>2}: raw aiohttp {raw:.2f}s, flireo-async {sdk:.2f}s, "
                f"ratio {sdk / raw:.2f}{target}"
            )
        raw = sdk = bare = float("inf")
        for _ in range(args.rounds):
            raw = min(raw, await export_raw(base, args.rows))
            sdk = min(sdk, await export_sdk(base, args.rows))
            bare = min(bare, await export_sdk_undecoded(base, args.rows))
        print(
            f"export of {args.rows:,} usage logs, prefetch {PREFETCH}: raw aiohttp + {_json.backend()} "
            f"{args.rows / raw:,.0f} rows/s, flireo-async {args.rows / sdk:,.0f} rows/s, "
            f"SDK/raw throughput {raw / sdk:.2f} (target >= 0.6); without building models "
            f"{args.rows / bare:,.0f} rows/s ({raw / bare:.2f})"
        )
        raws["export"] = raw
        if generated is not None:
            times = run_generated(*generated, base, args.requests, args.rows, args.rounds)
            print("openapi-python-client's generated client (httpx), same server, same rounds:")
            for concurrency in (1, 50):
                seconds = times[f"get_{concurrency}"]
                print(
                    f"  concurrency {concurrency:>2}: {seconds:.2f}s, ratio to raw aiohttp "
                    f"{seconds / raws[f'get_{concurrency}']:.2f}"
                )
            print(
                f"  export: {args.rows / times['export']:,.0f} rows/s, generated/raw throughput "
                f"{raws['export'] / times['export']:.2f}"
            )


if __name__ == "__main__":
    asyncio.run(main())
