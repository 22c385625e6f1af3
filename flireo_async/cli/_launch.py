"""``flireo calls launch``: dial every lead of a CSV through ``client.calls.create_many``.

Every lead's outcome goes to a results file (CSV: line, identity, destination, outcome, call
id, error), every lead that may have been dialed included; stderr shows the first few.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

import attrs

from .._errors import NotFoundError
from .._types import UNSET
from ..bulk import LaunchResult, LaunchStore
from ..fleet import RedisLaunchStore
from ..models import OutboundCallRequest
from ._common import EXIT_USAGE, CLIError, Pace, Progress, print_table
from ._leads import check_leads, read_leads

if TYPE_CHECKING:
    from .._client import AsyncFlireo

__all__ = ["LaunchSummary", "launch_from_csv", "preflight", "print_summary", "RESULT_COLUMNS"]

_LISTED = 20
"""How many failed or unknown leads are listed on stderr (all of them are in the results file)."""

RESULT_COLUMNS = ("line", "identity", "destination", "outcome", "call_id", "error", "resumed")
"""The columns of the results file; ``resumed`` is ``yes`` for an outcome read from the record
(an earlier run, or another worker of a Redis launch) rather than produced by this process."""


@attrs.define
class LaunchSummary:
    """Counts of one ``calls launch`` run."""

    total: int = 0
    launched: int = 0
    failed: int = 0
    unknown: int = 0
    duplicate: int = 0
    resumed: int = 0
    """Outcomes read from the store (an earlier run or another worker), included above."""
    interrupted: bool = False
    call_ids: list[str] = attrs.field(factory=list)

    @property
    def done(self) -> int:
        return self.launched + self.failed + self.unknown + self.duplicate

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


class _ResultsFile:
    """The per-lead results CSV, written row by row as results arrive."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._stream: TextIO = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        except OSError as exc:
            raise CLIError(f"cannot write {path}: {exc.strerror or exc}", EXIT_USAGE) from None
        self._writer = csv.writer(self._stream)
        self._writer.writerow(RESULT_COLUMNS)

    def add(self, line: int | None, result: LaunchResult, note: str) -> None:
        self._writer.writerow(
            [
                line if line is not None else "",
                result.identity,
                result.destination or "",
                result.status,
                result.call_id or "",
                note,
                "yes" if result.resumed else "",
            ]
        )
        self._stream.flush()

    def close(self) -> None:
        self._stream.close()


def default_results_path(leads: str, worker: str | None = None) -> str:
    """``leads.results.csv`` beside the input (``leads.results.<worker>.csv`` for a fleet worker)."""
    stem = os.path.splitext(leads)[0]
    return f"{stem}.results.{worker}.csv" if worker else f"{stem}.results.csv"


def default_journal_path(leads: str) -> str:
    """``leads.journal`` beside the input."""
    return os.path.splitext(leads)[0] + ".journal"


def _note(result: LaunchResult, lines: dict[int, int]) -> str:
    if result.status == "duplicate" and result.duplicate_of is not None:
        first = lines.get(result.duplicate_of)
        return (
            f"duplicate of line {first}"
            if first is not None
            else f"duplicate of lead #{result.duplicate_of + 1}"
        )
    if result.error is None:
        return ""
    text = f"{type(result.error).__name__}: {result.error}"
    return " ".join(text.split())[:500]


async def launch_from_csv(
    client: AsyncFlireo,
    path: str,
    *,
    agent_id: str,
    number_id: str | None = None,
    store: LaunchStore | None = None,
    key_column: str | None = None,
    results: str,
    max_in_flight: int | None = None,
    progress: Progress,
    keep_call_ids: bool = False,
    summary: LaunchSummary | None = None,
    announce: str | None = None,
    pace: Pace | None = None,
) -> LaunchSummary:
    """Validate the leads file, then launch one call per lead and record every outcome.

    Failed and unknown leads are listed on stderr with their line number (the first
    :data:`_LISTED` of each); every lead is in the ``results`` file. Counts go into ``summary``
    (a new one when not given) as results arrive; on cancellation (Ctrl-C) it is marked
    ``interrupted`` once the launcher has recorded the requests in flight, and the
    cancellation goes on. ``announce`` is shown once the file and the agent have been checked.
    ``pace`` adds the pacing and the ETA to the progress line (one request per lead).
    """
    summary = summary if summary is not None else LaunchSummary()
    name = os.path.basename(path)
    checked = check_leads(path, key_column=key_column)
    summary.total = checked.count
    if isinstance(store, RedisLaunchStore):
        store.total = checked.count  # shown by `flireo calls launch-status`
    for group in checked.repeats:
        progress.message(
            f"{name}: lines {', '.join(map(str, group))} are the same lead; only line {group[0]} is dialed"
        )
    await preflight(client, agent_id, number_id)
    if announce:
        progress.message(announce)
    # Line numbers by input position: one int per lead, for results and duplicate notes.
    lines: dict[int, int] = {}
    # The key of each request handed to the launcher, until the launcher has read it.
    keys: dict[int, str] = {}

    def requests() -> Iterator[OutboundCallRequest]:
        for index, lead in enumerate(read_leads(path, key_column=key_column)):
            lines[index] = lead.line
            request = OutboundCallRequest(
                destination=lead.phone,
                assistant_id=agent_id,
                number_id=number_id if number_id is not None else UNSET,
            )
            if lead.key is not None:
                keys[id(request)] = lead.key
            yield request

    def lead_key(request: OutboundCallRequest) -> object:
        return keys.pop(id(request))

    listed = {"failed": 0, "unknown": 0}
    out = _ResultsFile(results)
    try:
        with progress.bar("launching calls", summary.total) as bar:
            launches = client.calls.create_many(
                requests(),
                max_in_flight=max_in_flight,
                store=store,
                key=lead_key if checked.keyed else None,
            )
            try:
                async with contextlib.aclosing(launches):
                    async for result in launches:
                        line = lines.get(result.index)
                        _count(summary, result, keep_call_ids)
                        out.add(line, result, _note(result, lines))
                        if result.status in listed and listed[result.status] < _LISTED:
                            listed[result.status] += 1
                            _report(name, line, result, progress)
                        info = _info(summary)
                        if pace is not None:
                            sent = summary.done - summary.resumed - summary.duplicate
                            timing = pace.info(sent, summary.total - summary.done)
                            info = f"{info}  {timing}" if timing else info
                        bar.update(summary.done, info=info)
            except asyncio.CancelledError:
                summary.interrupted = True
                raise
    finally:
        out.close()
    for status in ("failed", "unknown"):
        more = getattr(summary, status) - listed[status]
        if more > 0:
            print(f"... and {more} more {status} leads: all are listed in {results}", file=sys.stderr)
    return summary


def _info(summary: LaunchSummary) -> str:
    text = f"launched {summary.launched}  failed {summary.failed}  unknown {summary.unknown}"
    if summary.duplicate:
        text += f"  duplicate {summary.duplicate}"
    if summary.resumed:
        text += f"  (recorded earlier or by other workers: {summary.resumed})"
    return text


def _count(summary: LaunchSummary, result: LaunchResult, keep_call_ids: bool) -> None:
    if result.status == "launched":
        summary.launched += 1
        if keep_call_ids and result.call_id:
            summary.call_ids.append(result.call_id)
    elif result.status == "failed":
        summary.failed += 1
    elif result.status == "duplicate":
        summary.duplicate += 1
    else:
        summary.unknown += 1
    if result.resumed:
        summary.resumed += 1


def _report(name: str, line: int | None, result: LaunchResult, progress: Progress) -> None:
    where = f"{name}:{line}" if line is not None else f"{name} lead #{result.index + 1}"
    reason = f"{type(result.error).__name__}: {result.error}" if result.error is not None else ""
    note = " (recorded earlier)" if result.resumed else ""
    text = f"{where}: {result.destination}: {result.status}{note}: {reason}"
    if result.status == "unknown" and not result.resumed:
        text += " — not retried: the call may have been placed; check the call list"
    progress.message(text)


def print_summary(summary: LaunchSummary, *, store: str | None, results: str, rerun: str) -> None:
    """The counts on stdout, plus where the details are and how to go on."""
    rows = [
        ("launched", str(summary.launched)),
        ("failed", str(summary.failed)),
        ("unknown", str(summary.unknown)),
    ]
    if summary.duplicate:
        rows.append(("duplicate", str(summary.duplicate)))
    rows.append(("total", f"{summary.done} of {summary.total}"))
    if summary.resumed:
        rows.append(("recorded earlier", str(summary.resumed)))
    print_table("Interrupted launch" if summary.interrupted else "Launch summary", rows)
    print(f"results: {results}", file=sys.stderr)
    if summary.interrupted:
        hint = (
            f"rerun the same command to continue where it stopped ({rerun})"
            if store
            else ("without a journal a rerun cannot tell which leads were dialed")
        )
        print(f"interrupted: {hint}", file=sys.stderr)
    elif summary.failed and store:
        print(f"rerun the same command to retry the {summary.failed} failed leads ({rerun})", file=sys.stderr)
    if summary.unknown:
        print(
            f"{summary.unknown} leads may have been dialed (unknown): they are never retried; check "
            "GET /calls (flireo export calls) for their numbers before calling them again",
            file=sys.stderr,
        )
