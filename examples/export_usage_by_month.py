"""Stream the usage logs of a period into one CSV file per month.

Usage::

    FLIREO_API_KEY=... python examples/export_usage_by_month.py 2026-01 2026-06 usage/

writes ``usage/usage-2026-01.csv`` ... ``usage/usage-2026-06.csv``. Each month is one streaming
export: rows are written page by page, so memory stays flat whatever the volume, and a month's
file appears under its name only once it is complete (rerun the command after a failure).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

from flireo_async import AsyncFlireo
from flireo_async.export import export_usage


def months(first: str, last: str) -> Iterator[date]:
    """The first day of every month from ``first`` to ``last`` (``YYYY-MM``), both included."""
    month = datetime.strptime(first, "%Y-%m").date()
    end = datetime.strptime(last, "%Y-%m").date()
    if month > end:
        raise ValueError(f"first month {first} is after last month {last}")
    while month <= end:
        yield month
        month = (month + timedelta(days=32)).replace(day=1)


async def export_by_month(client: AsyncFlireo, first: str, last: str, out_dir: str | Path) -> dict[str, int]:
    """Write ``usage-YYYY-MM.csv`` for each month into ``out_dir``; returns the rows per file."""
    out = Path(out_dir)
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    rows: dict[str, int] = {}
    for month in months(first, last):
        last_day = (month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        path = out / f"usage-{month:%Y-%m}.csv"
        # Dates are UTC days, and an end date alone includes its whole day.
        rows[path.name] = await export_usage(client, path, start_date=month, end_date=last_day)
    return rows


async def main(first: str, last: str, out_dir: str) -> None:
    async with AsyncFlireo() as client:  # FLIREO_API_KEY, FLIREO_BASE_URL
        for name, count in (await export_by_month(client, first, last, out_dir)).items():
            print(f"{name}: {count} rows")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    asyncio.run(main(*sys.argv[1:]))
