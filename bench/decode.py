"""Decoding cost of the usage export, in one process, no network.

Pages of 1,000 usage logs (the same bytes ``bench/_server.py`` serves) go through what the
client does with a response body (JSON parse, unwrap, decode into attrs models) and what the
export does with the models (encode, CSV row). Prints, best of ``--rounds``:

1. per page: the JSON parser alone, parse + decode, their ratio, and parse + decode against the
   standard library's ``json.loads`` alone (target <= 1.5);
2. the whole export path over ``--pages`` pages: rows per second;
3. with ``--profile``: the top entries of cProfile over the export path (sorted by own time).

Run: ``.venv/bin/python bench/decode.py [--pages 100] [--profile]`` (``FLIREO_JSON=stdlib`` forces
the standard library's parser).
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import json
import pstats
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import attrs
from _server import usage_page

from flireo_async import _json
from flireo_async._config import ClientConfig
from flireo_async._generated.operations import GET_USAGE
from flireo_async._pagination import _DECODE_AHEAD
from flireo_async._transport import Transport
from flireo_async.export import _csv_row, columns
from flireo_async.models import UsageLog

PAGE = 1000


def export_pages(transport: Transport, bodies: list[bytes], out: io.StringIO) -> int:
    """What the exports do with each page: the page shell decoded on arrival, the rows a
    hundred at a time as they are written (see AsyncPaginator._batches)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns(UsageLog))
    row = _csv_row(UsageLog)
    rows = 0
    deferred_op = attrs.evolve(GET_USAGE, defer_items=True)
    for body in bodies:
        page: Any = transport._decode_success(deferred_op, 200, {}, body)
        for start in range(0, len(page.rows), _DECODE_AHEAD):
            items = page.decode_rows(page.rows[start : start + _DECODE_AHEAD])
            writer.writerows(map(row, items))
            rows += len(items)
    return rows


def best(rounds: int, fn: Any) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    transport = Transport(ClientConfig.from_env("bench", None, rate_limit=None))
    bodies = [usage_page(i * PAGE, PAGE, args.pages * PAGE) for i in range(args.pages)]
    body = bodies[0]
    print(f"JSON backend: {_json.backend()}")
    loads = best(args.rounds * 4, lambda: _json.loads(body))
    decoded = best(args.rounds * 4, lambda: transport._decode_success(GET_USAGE, 200, {}, body))
    print(
        f"one page of {PAGE} rows: parse {loads * 1e3:.2f} ms, parse + decode {decoded * 1e3:.2f} ms, "
        f"ratio {decoded / loads:.2f}; decode alone {(decoded - loads) / PAGE * 1e6:.2f} µs/row"
    )
    # The yardstick of the target: the standard library's parser alone, whatever backend we use.
    stdlib = best(args.rounds * 4, lambda: json.loads(body))
    print(
        f"against json.loads alone ({stdlib * 1e3:.2f} ms): parse + decode is {decoded / stdlib:.2f}x "
        "(target <= 1.5)"
    )
    seconds = best(args.rounds, lambda: export_pages(transport, bodies, io.StringIO()))
    rows = args.pages * PAGE
    print(
        f"export path (parse, decode, encode, CSV): {rows:,} rows in {seconds:.2f}s = {rows / seconds:,.0f} rows/s"
    )
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        export_pages(transport, bodies, io.StringIO())
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
