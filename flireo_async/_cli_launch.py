"""``flireo calls launch``: dial every lead of a CSV through ``client.calls.create_many``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import attrs

from ._cli_common import EXIT_USAGE, CLIError, Progress, print_table
from ._cli_leads import check_leads, read_leads
from ._errors import NotFoundError
from ._types import UNSET
from .bulk import LaunchResult
from .models import OutboundCallRequest

if TYPE_CHECKING:
    from ._client import AsyncFlireo

__all__ = ["LaunchSummary", "launch_from_csv", "preflight"]

_LISTED = 20
"""How many failed or unknown leads are listed on stderr (all of them are in the journal)."""


@attrs.define
class LaunchSummary:
    """Counts of one ``calls launch`` run."""

    total: int = 0
    launched: int = 0
    failed: int = 0
    unknown: int = 0
    resumed: int = 0
    interrupted: bool = False
    call_ids: list[str] = attrs.field(factory=list)

    @property
    def done(self) -> int:
        return self.launched + self.failed + self.unknown

    @property
    def ok(self) -> bool:
        return not self.interrupted and self.failed == 0 and self.unknown == 0


async def preflight(client: AsyncFlireo, agent_id: str, number_id: str | None) -> None:
    """Check the key, the server, the agent and the number before dialing anyone.

    A wrong key (401) or an unreachable server then stops the command at once, instead of
    failing every lead one by one.
    """
    try:
        await client.agents.get(agent_id)
    except NotFoundError:
        raise CLIError(f"agent {agent_id!r} not found (404)", EXIT_USAGE) from None
    if number_id is not None:
        try:
            await client.numbers.get(number_id)
        except NotFoundError:
            raise CLIError(f"number {number_id!r} not found (404)", EXIT_USAGE) from None


async def launch_from_csv(
    client: AsyncFlireo,
    path: str,
    *,
    agent_id: str,
    number_id: str | None = None,
    journal: str | None = None,
    max_in_flight: int | None = None,
    progress: Progress,
    keep_call_ids: bool = False,
    summary: LaunchSummary | None = None,
) -> LaunchSummary:
    """Validate the leads file, then launch one call per lead and report as results arrive.

    Failed and unknown leads are listed on stderr with their line number (the first
    :data:`_LISTED` of each). Counts go into ``summary`` (a new one when not given) as results
    arrive; on cancellation (Ctrl-C) it is marked ``interrupted`` once the launcher has recorded
    the requests in flight, and the cancellation goes on.
    """
    summary = summary if summary is not None else LaunchSummary()
    summary.total = check_leads(path)
    await preflight(client, agent_id, number_id)
    # Line numbers of the leads handed to the launcher and not yet reported: bounded by the
    # number of requests in flight, so memory does not grow with the file.
    lines: dict[int, int] = {}

    def requests() -> Iterator[OutboundCallRequest]:
        for index, lead in enumerate(read_leads(path)):
            lines[index] = lead.line
            yield OutboundCallRequest(
                destination=lead.phone,
                assistant_id=agent_id,
                number_id=number_id if number_id is not None else UNSET,
            )

    name = os.path.basename(path)
    listed = {"failed": 0, "unknown": 0}
    with progress.bar("launching calls", summary.total) as bar:
        launches = client.calls.create_many(requests(), max_in_flight=max_in_flight, journal=journal)
        try:
            async with contextlib.aclosing(launches):
                async for result in launches:
                    line = lines.pop(result.index, None)
                    _count(summary, result, keep_call_ids)
                    if result.status != "launched" and listed[result.status] < _LISTED:
                        listed[result.status] += 1
                        _report(name, line, result, progress)
                    bar.update(
                        summary.done,
                        info=f"launched {summary.launched}  failed {summary.failed}  unknown {summary.unknown}",
                    )
        except asyncio.CancelledError:
            summary.interrupted = True
            raise
    for status in ("failed", "unknown"):
        more = getattr(summary, status) - listed[status]
        if more > 0:
            print(
                f"... and {more} more {status} leads{' (see the journal)' if journal else ''}",
                file=sys.stderr,
            )
    return summary


def _count(summary: LaunchSummary, result: LaunchResult, keep_call_ids: bool) -> None:
    if result.status == "launched":
        summary.launched += 1
        if keep_call_ids and result.call_id:
            summary.call_ids.append(result.call_id)
    elif result.status == "failed":
        summary.failed += 1
    else:
        summary.unknown += 1
    if result.resumed:
        summary.resumed += 1


def _report(name: str, line: int | None, result: LaunchResult, progress: Progress) -> None:
    where = f"{name}:{line}" if line is not None else f"{name} lead #{result.index + 1}"
    reason = f"{type(result.error).__name__}: {result.error}" if result.error is not None else ""
    note = " (resumed from the journal)" if result.resumed else ""
    text = f"{where}: {result.destination}: {result.status}{note}: {reason}"
    if result.status == "unknown" and not result.resumed:
        text += " — not retried: the call may have been placed; check the call list"
    progress.message(text)


def print_summary(summary: LaunchSummary, *, journal: str | None) -> None:
    """The counts on stdout, plus a hint on how to go on."""
    rows = [
        ("launched", str(summary.launched)),
        ("failed", str(summary.failed)),
        ("unknown", str(summary.unknown)),
        ("total", f"{summary.done} of {summary.total}"),
    ]
    if summary.resumed:
        rows.append(("from journal", str(summary.resumed)))
    print_table("Interrupted launch" if summary.interrupted else "Launch summary", rows)
    if summary.interrupted:
        hint = (
            f"rerun the same command with --journal {journal} to continue where it stopped"
            if journal
            else "without --journal a rerun cannot tell which leads were dialed"
        )
        print(f"interrupted: {hint}", file=sys.stderr)
    elif summary.failed and journal:
        print(f"rerun with --journal {journal} to retry the {summary.failed} failed leads", file=sys.stderr)
