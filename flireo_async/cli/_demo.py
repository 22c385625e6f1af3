"""``flireo demo`` and ``flireo mock``: the SDK end to end against the fake server, offline.

The demo starts :class:`~flireo_async.testing.FakeFlireo` in this process with simulated time
running 60 times faster, then does what a user would: create an agent and a number, launch
calls from a leads CSV with a journal, wait for the calls to end, export the usage logs, write
a usage report and print a summary. It needs no network and no API key (it uses the fake's).
"""

from __future__ import annotations

import asyncio
import collections
import csv
import datetime
import os
import random
import tempfile
import time
from typing import Any

from ._common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CLIError, Progress, print_table
from ._launch import launch_from_csv

__all__ = ["run_demo", "fake_server_class", "DEMO_SPEED", "DEMO_RATE_LIMIT"]

DEMO_SPEED = 60.0
"""Simulated seconds per real second: a 3-minute call takes 3 seconds."""
DEMO_RATE_LIMIT = 1200
"""Requests per minute, on the fake and on the client alike (the real API allows 100)."""
_ACTIVE = frozenset({"dialing", "connecting", "ringing", "in-progress"})
_FIRST_NAMES = ("Jan", "Sanne", "Pieter", "Emma", "Daan", "Lotte", "Bram", "Fleur", "Luuk", "Noor")


def fake_server_class() -> Any:
    """:class:`~flireo_async.testing.FakeFlireo`, or a one-line :class:`CLIError` naming the
    extra to install when its dependencies (jsonschema) are missing from a base install."""
    try:
        from ..testing._server import FakeFlireo
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing not in ("jsonschema", "referencing"):
            raise
        raise CLIError(
            f"the fake server needs {missing}, which the base install lacks: pip install 'flireo-async[cli]'",
            EXIT_USAGE,
        ) from None
    return FakeFlireo


def write_leads(path: str, count: int, *, seed: int = 7) -> None:
    """A leads CSV with ``count`` distinct Dutch mobile numbers and a name column (ignored)."""
    rng = random.Random(seed)
    numbers = rng.sample(range(10_000_000), count)
    with open(path, "w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(["name", "phone"])
        for number in numbers:
            writer.writerow([rng.choice(_FIRST_NAMES), f"+3161{number:07d}"])


def _prepare_files(out_dir: str | None, calls: int) -> tuple[str, str, str, str]:
    directory = out_dir or tempfile.mkdtemp(prefix="flireo-demo-")
    os.makedirs(directory, exist_ok=True)
    leads = os.path.join(directory, "leads.csv")
    journal = os.path.join(directory, "launch.journal")
    if os.path.exists(journal):
        os.remove(journal)  # a fresh fake server each time: an old journal would skip every lead
    write_leads(leads, calls)
    return directory, leads, journal, os.path.join(directory, "usage.csv")


async def _wait_for_calls(
    client: Any, expected: int, progress: Progress, timeout: float = 60.0
) -> collections.Counter[str]:
    """Poll ``GET /calls`` until no call is active; return the count of each final status."""
    deadline = time.monotonic() + timeout
    with progress.bar("waiting for calls to end", expected) as bar:
        while True:
            statuses: collections.Counter[str] = collections.Counter()
            async for call in client.calls.list(limit=1000):
                statuses[call.status] += 1
            active = sum(statuses[status] for status in _ACTIVE)
            bar.update(sum(statuses.values()) - active, info=f"{active} still active")
            if active == 0 or time.monotonic() > deadline:
                return statuses
            await asyncio.sleep(0.25)


async def run_demo(*, out_dir: str | None, calls: int, progress: Progress) -> int:
    """Run the demo; exit code 0 when every call was launched."""
    from .._client import AsyncFlireo
    from ..bulk import FileLaunchStore
    from ..export import export_usage
    from ..report import usage_report

    fake_server = fake_server_class()
    started = time.monotonic()
    directory, leads, journal, usage_csv = _prepare_files(out_dir, calls)
    report = os.path.join(directory, "usage-report.html")

    fake = fake_server(speed=DEMO_SPEED, rate_limit=DEMO_RATE_LIMIT, failure_share=0.1, seed=7)
    async with fake:
        print(f"fake Flireo API on {fake.url} (key {fake.api_key}); files in {directory}")
        async with AsyncFlireo(api_key=fake.api_key, base_url=fake.url, rate_limit=DEMO_RATE_LIMIT) as client:
            agent = await client.agents.create(
                name="Demo outbound agent",
                business_name="Acme Demo",
                first_message="Goedemiddag, u spreekt met de assistent van Acme.",
            )
            number = await client.numbers.create(
                phone_number="+31850835037", agent_id=agent.id, name="Demo line"
            )
            print(f"created agent {agent.id} and number {number.phone_number}")
            summary = await launch_from_csv(
                client,
                leads,
                agent_id=agent.id,
                number_id=number.id,
                store=FileLaunchStore(journal),
                results=os.path.join(directory, "leads.results.csv"),
                progress=progress,
            )
            statuses = await _wait_for_calls(client, summary.launched, progress)
            with progress.bar("exporting usage logs") as bar:
                rows = await export_usage(
                    client, usage_csv, progress=lambda done, total: bar.update(done, total)
                )
            totals = (await client.usage.list(limit=1)).summary
            today = datetime.datetime.now(datetime.timezone.utc).date()
            # The fake's clock runs fast: a day either side keeps every call in the period.
            stats = await usage_report(
                client,
                report,
                start_date=today - datetime.timedelta(days=1),
                end_date=today + datetime.timedelta(days=1),
                title="Flireo demo usage",
            )

    seconds = totals.total_duration_seconds if totals is not None else 0
    seconds = seconds if isinstance(seconds, int) else 0
    print_table(
        "Demo summary",
        [
            ("leads", f"{calls} ({leads})"),
            ("launched", str(summary.launched)),
            ("failed", str(summary.failed)),
            ("unknown", str(summary.unknown)),
            ("calls ended", ", ".join(f"{n} {status}" for status, n in statuses.most_common()) or "none"),
            ("minutes", f"{seconds / 60:.1f} over {rows} usage logs"),
            ("usage CSV", usage_csv),
            ("report", f"{report} ({stats.calls} calls; open it in a browser)"),
            ("journal", journal),
            ("took", f"{time.monotonic() - started:.1f} s"),
        ],
    )
    return EXIT_OK if summary.launched == calls else EXIT_FAILED
