"""The usage report in constant memory: peak Python allocations (tracemalloc) while building the
report from 20,000 and from 200,000 usage logs.

The logs come from the benchmark server in its own process (so its allocations are not traced),
1,000 per page. The report adds each page up and drops it; the peak must not grow with the
number of logs (target: the 200k peak within 1.5x of the 20k peak, and both a few MB).

Run: ``.venv/bin/python bench/report.py [--rounds 2]``
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import server

from flireo_async import AsyncFlireo
from flireo_async.report import usage_report


async def build(base: str) -> tuple[int, float, float]:
    """Build one report; return (logs counted, peak MB traced, seconds)."""
    async with AsyncFlireo(api_key="bench", base_url=base, rate_limit=None) as client:
        out = io.StringIO()
        tracemalloc.start()
        tracemalloc.reset_peak()
        start = time.perf_counter()
        stats = await usage_report(client, out, start_date="2026-01-01", end_date="2026-01-31")
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return stats.calls, peak / 1e6, seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    peaks: dict[int, float] = {}
    for rows in (20_000, 200_000):
        with server("--rows", str(rows)) as base:
            best = None
            for _ in range(args.rounds):
                calls, peak, seconds = asyncio.run(build(base))
                assert calls == rows, (calls, rows)
                best = peak if best is None else min(best, peak)
                print(f"{rows:>7} logs: peak {peak:6.2f} MB traced, {seconds:5.1f} s (under tracemalloc)")
            assert best is not None
            peaks[rows] = best
    ratio = peaks[200_000] / peaks[20_000]
    print(f"peak 200k / peak 20k = {ratio:.2f} (target <= 1.5: memory does not grow with the logs)")


if __name__ == "__main__":
    main()
