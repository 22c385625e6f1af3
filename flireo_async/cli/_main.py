"""The ``flireo`` command: exports, bulk outbound calls, usage reports, a local mock server and a demo.

Exit codes: 0 everything worked; 1 some items failed or have an unknown outcome, or the API
could not be reached or failed; 2 bad arguments or input, missing or rejected API key, unknown
agent/number/campaign; 130 interrupted with Ctrl-C; 141 stdout was closed by its reader (``| head``),
quietly, as a shell reports a program ended by SIGPIPE. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import re
import sys
import textwrap
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import IO, Any

from .._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    FlireoError,
    NotFoundError,
    PermissionDeniedError,
)
from .._version import __version__
from ._common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PIPE_CLOSED,
    EXIT_USAGE,
    Bar,
    CLIError,
    Pace,
    Progress,
    RetryNotes,
)

__all__ = ["main", "build_parser"]

_ENV_HELP = """\
credentials:
  FLIREO_API_KEY     your API key (or --api-key)
  FLIREO_BASE_URL    API base URL (or --base-url; default https://api.flireo.com/api/v1)

exit codes:
  0    everything worked
  1    some calls failed or have an unknown outcome, or the API could not be reached
  2    bad arguments or input file, missing or rejected API key, unknown agent/number/campaign
  141  the reader of stdout went away (e.g. | head) before the output was complete
"""

_MAIN_EXAMPLES = """\
examples:
  flireo demo                                       try everything against a local fake API
  flireo export usage --start-date 2026-01-01 --out usage.csv
  flireo calls launch leads.csv --agent-id AGENT_ID --journal leads.journal
  flireo usage report --start-date 2026-01-01 --end-date 2026-01-31 --out january.html
  flireo mock --port 8080                           a fake API for your own tests

"""


def _paragraphs(*texts: str) -> str:
    """Descriptions wrapped here, since the raw formatter (which keeps the examples' layout)
    does not wrap."""
    return "\n\n".join(textwrap.fill(text, 88) for text in texts)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


def _common(parser: argparse.ArgumentParser, *, credentials: bool) -> None:
    # Defaults are SUPPRESS so that an option given before the command is not reset by the
    # subcommand's copy of it; readers use getattr(args, name, default).
    group = parser.add_argument_group("common options")
    if credentials:
        group.add_argument(
            "--api-key", default=argparse.SUPPRESS, metavar="KEY", help="API key (default: $FLIREO_API_KEY)"
        )
        group.add_argument(
            "--base-url",
            default=argparse.SUPPRESS,
            metavar="URL",
            help="API base URL (default: $FLIREO_BASE_URL or https://api.flireo.com/api/v1)",
        )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no progress bars (they are also off when stderr is not a terminal)",
    )


DEFAULT_TIMEOUT = 30.0
DEFAULT_RATE_LIMIT = 100
MAX_RETRIES = 2
"""Retries after a failed attempt of a read (so 3 attempts), as the retry notes count them."""


def _api_options(parser: argparse.ArgumentParser, *, rate_limit: bool = True) -> None:
    """``--timeout`` and ``--rate-limit`` for a command that talks to the API."""
    group = parser.add_argument_group("API options")
    group.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"give up on one attempt of a request after this long (default {DEFAULT_TIMEOUT:g}; "
        "reads are tried 3 times)",
    )
    if rate_limit:
        group.add_argument(
            "--rate-limit",
            type=int,
            default=DEFAULT_RATE_LIMIT,
            metavar="N",
            help=f"requests per minute (default {DEFAULT_RATE_LIMIT}, the API's limit)",
        )


def _command_group(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    *,
    summary: str,
    description: str,
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """A command that only groups others (``flireo calls launch``): its own sub-commands, one
    of which is required."""
    group = commands.add_parser(name, help=summary, description=description, formatter_class=_Formatter)
    subcommands = group.add_subparsers(title="commands", dest=f"{name}_command", metavar="COMMAND")
    subcommands.required = True
    return subcommands


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``flireo`` (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="flireo",
        description=_paragraphs(
            "Command-line tools for the Flireo voice-AI API: streaming exports, bulk outbound "
            "calls with a crash-safe journal, usage reports, a local mock server and a demo."
        ),
        epilog=_MAIN_EXAMPLES + _ENV_HELP,
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"flireo-async {__version__}")
    _common(parser, credentials=True)
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")

    export = commands.add_parser(
        "export",
        help="stream usage logs, calls or campaign leads to CSV or JSON Lines",
        description=_paragraphs(
            "Stream usage logs, calls or a campaign's leads to a CSV or JSON Lines file, page by "
            "page (constant memory). CSV columns are the API's field names; nested values are JSON "
            "in the cell. The file appears under its name only once the export is complete."
        ),
        epilog="examples:\n"
        "  flireo export usage --start-date 2026-01-01 --end-date 2026-01-31 --out january.csv\n"
        "  flireo export calls --status ended --format jsonl --out calls.jsonl\n"
        "  flireo export leads --campaign CAMPAIGN_ID --out leads.csv\n"
        "  flireo export usage --out - | head        (- writes to stdout)\n\n" + _ENV_HELP,
        formatter_class=_Formatter,
    )
    export.add_argument("what", choices=("usage", "calls", "leads"), help="what to export")
    export.add_argument("--campaign", metavar="ID", help="campaign id (required for leads)")
    export.add_argument(
        "--start-date",
        metavar="DATE",
        help="only rows created at or after DATE (YYYY-MM-DD or ISO 8601 date-time; UTC)",
    )
    export.add_argument(
        "--end-date",
        metavar="DATE",
        help="only rows created at or before DATE (a date alone includes that whole day)",
    )
    export.add_argument("--status", metavar="STATUS", help="calls only: only calls with this status")
    export.add_argument(
        "--format", choices=("csv", "jsonl"), help="output format (default: from the --out suffix, else csv)"
    )
    export.add_argument("--out", required=True, metavar="FILE", help="output file, or - for stdout")
    export.add_argument(
        "--page-size", type=int, default=1000, metavar="N", help="rows per API request, 1-1000 (default 1000)"
    )
    _api_options(export)
    _common(export, credentials=True)
    export.set_defaults(handler=_run_export)

    calls_commands = _command_group(
        commands, "calls", summary="outbound calls (launch a CSV of leads)", description="Outbound calls."
    )
    launch = calls_commands.add_parser(
        "launch",
        help="call every lead of a CSV file",
        description=_paragraphs(
            "Call every lead of a CSV file with a saved agent. The file needs a header with a "
            "phone column (phone, phone_number or destination); a column named key (or "
            "--key-column) identifies each lead, e.g. a CRM id; other columns are ignored. Comma, "
            "semicolon and tab separated files are read. Every number must be E.164 "
            "(+31612345678; spaces and dashes are removed); the whole file is checked before "
            "anyone is dialed, and every bad row is reported.",
            "Each lead ends as launched, failed (the API certainly did not dial: safe to retry), "
            "unknown (the call may have been placed: timeout, dropped connection, 5xx; never "
            "retried automatically) or duplicate (the same lead appeared earlier in the file; "
            "dialed once). Every outcome goes to a results file. A journal records every attempt "
            "before it is sent: rerun the same command after a crash or Ctrl-C, even with an "
            "edited file, and nobody is dialed twice while failed leads are retried.",
            "With --redis URL --launch NAME, several processes or hosts run the same launch "
            "together: each lead is dialed by exactly one of them, and they share one rate "
            "limit. Start the same command in several terminals; see the combined progress with "
            "flireo calls launch-status.",
        ),
        epilog="examples:\n"
        "  flireo calls launch leads.csv --agent-id 3f6d2a9e-...\n"
        "  flireo calls launch leads.csv --agent-id ID --number-id NUMBER_ID --rate-limit 60\n"
        "  flireo calls launch leads.csv --agent-id ID --redis redis://host:6379/0 --launch spring\n\n"
        + _ENV_HELP,
        formatter_class=_Formatter,
    )
    launch.add_argument("leads", metavar="LEADS.csv", help="CSV file with a phone column")
    launch.add_argument("--agent-id", required=True, metavar="ID", help="saved agent that makes the calls")
    launch.add_argument("--number-id", metavar="ID", help="your number shown as caller ID (default: any)")
    launch.add_argument(
        "--key-column", metavar="NAME", help="column that identifies each lead (default: a column named key)"
    )
    launch.add_argument(
        "--journal",
        metavar="FILE",
        help="record of what was dialed, so reruns skip it (default: LEADS.journal beside the file)",
    )
    launch.add_argument(
        "--no-journal", action="store_true", help="keep no record (a rerun may dial people again)"
    )
    launch.add_argument(
        "--results", metavar="FILE", help="per-lead results CSV (default: LEADS.results.csv beside the file)"
    )
    launch.add_argument(
        "--redis", metavar="URL", help="share the launch and the rate limit with other workers through Redis"
    )
    launch.add_argument("--launch", metavar="NAME", help="the launch's name in Redis (required with --redis)")
    launch.add_argument(
        "--wait-for-redis",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="when Redis stops answering, wait this long for it before stopping (default 0)",
    )
    launch.add_argument(
        "--lease",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="with --redis: a worker silent this long is presumed dead and its unsent leads go to others "
        "(default 30)",
    )
    launch.add_argument(
        "--rate-limit",
        type=int,
        default=100,
        metavar="N",
        help="requests per minute (default 100, the API's limit; shared by all workers with --redis)",
    )
    launch.add_argument(
        "--max-in-flight", type=int, default=16, metavar="N", help="requests in flight at once (default 16)"
    )
    _api_options(launch, rate_limit=False)
    _common(launch, credentials=True)
    launch.set_defaults(handler=_run_launch)

    status = calls_commands.add_parser(
        "launch-status",
        help="combined progress of a launch run by several workers (Redis)",
        description=_paragraphs(
            "Show what Redis knows of a launch: leads launched, failed, unknown and in flight "
            "across all its workers, and the workers still alive."
        ),
        epilog="examples:\n  flireo calls launch-status --redis redis://host:6379/0 --launch spring\n\n"
        + _ENV_HELP,
        formatter_class=_Formatter,
    )
    status.add_argument("--redis", required=True, metavar="URL", help="the Redis the workers use")
    status.add_argument("--launch", required=True, metavar="NAME", help="the launch's name")
    _common(status, credentials=True)
    status.set_defaults(handler=_run_launch_status)

    usage_commands = _command_group(commands, "usage", summary="usage reports", description="Usage reports.")
    report = usage_commands.add_parser(
        "report",
        help="an HTML report of a period's usage: totals, minutes per day, by agent and by number",
        description=_paragraphs(
            "Write one self-contained HTML file (it loads nothing from the network) with the "
            "period's calls, minutes and share of calls that used your own provider keys (BYOK), "
            "a chart of minutes per day, and tables by agent and by phone number. The usage logs "
            "are added up as they are read, in constant memory.",
            "Without dates the report covers the 30 days up to today. Dates are calendar days in "
            "--tz; both are included.",
        ),
        epilog="examples:\n"
        "  flireo usage report --out report.html\n"
        "  flireo usage report --start-date 2026-01-01 --end-date 2026-01-31 --tz Europe/Amsterdam "
        "--out january.html\n\n" + _ENV_HELP,
        formatter_class=_Formatter,
    )
    report.add_argument(
        "--start-date", metavar="DATE", help="first day (YYYY-MM-DD; default 29 days before --end-date)"
    )
    report.add_argument("--end-date", metavar="DATE", help="last day (YYYY-MM-DD; default today)")
    report.add_argument(
        "--tz",
        default="UTC",
        metavar="ZONE",
        help="IANA time zone of the days, e.g. Europe/Amsterdam (default UTC)",
    )
    report.add_argument("--title", metavar="TEXT", help="the report's heading (default: Flireo usage report)")
    report.add_argument("--out", required=True, metavar="FILE.html", help="the HTML file to write")
    _api_options(report)
    _common(report, credentials=True)
    report.set_defaults(handler=_run_usage_report)

    mock = commands.add_parser(
        "mock",
        help="run a local fake Flireo API (for development and tests)",
        description=_paragraphs(
            "Run FakeFlireo, an in-memory fake of the Flireo API with simulated calls, until "
            "Ctrl-C. Prints the base URL and the API key to use."
        ),
        epilog="examples:\n"
        "  flireo mock --port 8080\n"
        "  flireo mock --speed 60 --rate-limit 0     (calls 60x faster, no rate limit)\n",
        formatter_class=_Formatter,
    )
    from ..testing import _cli as fake_server

    fake_server.add_arguments(mock)
    mock.set_defaults(handler=_run_mock, ctrl_c_exit=EXIT_OK)

    demo = commands.add_parser(
        "demo",
        help="a short tour against a local fake API (no network, no key)",
        description=_paragraphs(
            "Start a fake Flireo API in this process, create an agent and a number, launch 200 "
            "calls from a generated leads CSV, wait for them to end, export the usage logs to CSV, "
            "write a usage report (HTML) and print a summary. Needs no network and no API key; takes about 10 seconds."
        ),
        formatter_class=_Formatter,
    )
    demo.add_argument("--out", metavar="DIR", help="where to write the files (default: a new temp directory)")
    demo.add_argument("--calls", type=int, default=200, metavar="N", help="number of leads (default 200)")
    _common(demo, credentials=False)
    demo.set_defaults(handler=_run_demo)
    return parser


# -- commands ------------------------------------------------------------------------------------


def _api_key(args: argparse.Namespace) -> str:
    key: str = getattr(args, "api_key", None) or os.environ.get("FLIREO_API_KEY", "")
    if not key.strip():
        raise CLIError("no API key: set FLIREO_API_KEY or pass --api-key", EXIT_USAGE)
    return key


def _client(args: argparse.Namespace, **settings: Any) -> Any:
    from .._client import AsyncFlireo

    key = _api_key(args)
    base_url = getattr(args, "base_url", None) or os.environ.get("FLIREO_BASE_URL") or None
    timeout = getattr(args, "timeout", None)
    if timeout is not None:
        if not (math.isfinite(timeout) and 0 < timeout <= 3600):
            raise CLIError("--timeout must be from 0 to 3600 seconds (and more than 0)", EXIT_USAGE)
        settings.setdefault("timeout", timeout)
    rate_limit = getattr(args, "rate_limit", None)
    if rate_limit is not None:
        if rate_limit < 1:
            raise CLIError("--rate-limit must be at least 1 request per minute", EXIT_USAGE)
        settings.setdefault("rate_limit", rate_limit)
    settings.setdefault("max_retries", MAX_RETRIES)
    return AsyncFlireo(api_key=key, base_url=base_url, **settings)


def _progress(args: argparse.Namespace) -> Progress:
    ui: Progress | None = getattr(args, "progress_ui", None)
    return ui if ui is not None else Progress(quiet=getattr(args, "quiet", False))


async def _run_export(args: argparse.Namespace) -> int:
    from ..export import export_calls, export_leads, export_usage

    if args.what == "leads" and not args.campaign:
        raise CLIError("export leads needs --campaign ID", EXIT_USAGE)
    if args.status and args.what != "calls":
        raise CLIError("--status applies to export calls only", EXIT_USAGE)
    if not 1 <= args.page_size <= 1000:
        raise CLIError("--page-size must be from 1 to 1000", EXIT_USAGE)
    _check_period(args)
    if args.status is not None and args.status not in CALL_STATUSES:
        raise CLIError(
            f"--status {args.status!r} is not a call status; use one of: {', '.join(CALL_STATUSES)}",
            EXIT_USAGE,
        )
    fmt = _format(args.out, args.format)
    to_stdout = args.out == "-"
    out: str | IO[str] = sys.stdout if to_stdout else _writable(args.out)
    progress = _progress(args)
    label = {"usage": "usage logs", "calls": "calls", "leads": "leads"}[args.what]
    async with _client(args) as client:
        with progress.bar(f"exporting {label}") as bar:
            on_page = _paced_progress(bar, args.rate_limit, args.page_size)
            common: dict[str, Any] = dict(
                format=fmt,
                start_date=args.start_date,
                end_date=args.end_date,
                page_size=args.page_size,
                progress=on_page,
            )
            if args.what == "usage":
                rows = await export_usage(client, out, **common)
            elif args.what == "calls":
                rows = await export_calls(client, out, status=args.status, **common)
            else:
                try:
                    rows = await export_leads(client, args.campaign, out, **common)
                except NotFoundError:
                    raise CLIError(f"campaign {args.campaign!r} not found (404)", EXIT_USAGE) from None
    where = "stdout" if to_stdout else args.out
    print(f"wrote {rows} {label} to {where} ({fmt})", file=sys.stderr if to_stdout else sys.stdout)
    return EXIT_OK


def _paced_progress(bar: Bar, rate_limit: int | None, page_size: int) -> Callable[[int, int | None], None]:
    """A per-page progress callback that shows the rows, the pacing and the ETA (one request
    per page)."""
    pace = Pace(rate_limit)
    pages = 0

    def on_page(done: int, total: int | None) -> None:
        nonlocal pages
        pages += 1
        left = None if total is None else math.ceil(max(0, total - done) / page_size)
        bar.update(done, total, info=pace.info(pages, left))

    return on_page


CALL_STATUSES = (
    "dialing",
    "connecting",
    "ringing",
    "in-progress",
    "ended",
    "ended-with-error",
    "transferred",
    "failed",
    "rejected",
    "insufficient-credits",
)
"""The call statuses the API documents: ``--status`` takes one of these (another value would
silently match nothing)."""

_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def _format(out: str, given: str | None) -> str:
    """The export format: ``--format`` when given, else from the ``--out`` suffix (CSV for
    stdout or a name without a suffix); an unknown suffix is an error rather than CSV in
    disguise."""
    if given:
        return given
    suffix = os.path.splitext(out)[1].lower() if out != "-" else ""
    if not suffix:
        return "csv"
    if suffix not in _SUFFIXES:
        raise CLIError(
            f"--out {out}: cannot write {suffix} files; name it .csv or .jsonl, or give --format csv|jsonl",
            EXIT_USAGE,
        )
    return _SUFFIXES[suffix]


def _check_period(args: argparse.Namespace, *, tz: Any = None) -> tuple[Any, Any]:
    """``--start-date`` and ``--end-date`` as bounds (UNSET when absent); each must be a date
    and the start must not be after the end."""
    from ..export import date_bound

    bounds = []
    for flag, value, end in (("--start-date", args.start_date, False), ("--end-date", args.end_date, True)):
        try:
            bounds.append(date_bound(value, end=end, tz=tz))
        except ValueError as exc:
            raise CLIError(f"{flag}: {exc}", EXIT_USAGE) from None
    start, end = bounds
    if args.start_date is not None and args.end_date is not None and start > end:
        raise CLIError(
            f"--start-date {args.start_date} is after --end-date {args.end_date}: nothing can match",
            EXIT_USAGE,
        )
    return start, end


def _writable(path: str) -> str:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CLIError(f"cannot write {path}: directory {directory} does not exist", EXIT_USAGE)
    return path


async def _run_launch(args: argparse.Namespace) -> int:
    from ..bulk import FileLaunchStore, LaunchStore, LaunchStoreError
    from ._launch import (
        LaunchSummary,
        default_journal_path,
        default_results_path,
        launch_from_csv,
        print_summary,
    )

    if args.rate_limit < 1:
        raise CLIError("--rate-limit must be at least 1 request per minute", EXIT_USAGE)
    if args.max_in_flight < 1:
        raise CLIError("--max-in-flight must be at least 1", EXIT_USAGE)
    if args.redis and not args.launch:
        raise CLIError("--redis needs --launch NAME (the same name in every worker)", EXIT_USAGE)
    if args.launch and not args.redis:
        raise CLIError("--launch goes with --redis URL", EXIT_USAGE)
    if args.redis and (args.journal or args.no_journal):
        raise CLIError(
            "--journal and --no-journal do not apply with --redis (Redis is the record)", EXIT_USAGE
        )
    if args.journal and args.no_journal:
        raise CLIError("give --journal FILE or --no-journal, not both", EXIT_USAGE)
    if not 0 <= args.wait_for_redis <= 86400:
        raise CLIError("--wait-for-redis must be from 0 to 86400 seconds", EXIT_USAGE)
    store: LaunchStore | None = None
    settings: dict[str, Any] = dict(rate_limit=args.rate_limit, max_concurrency=args.max_in_flight)
    rerun = (
        "flireo calls launch " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["calls"] else "the same command"
    )
    if args.redis:
        from ..fleet import RedisLaunchStore, RedisRateLimiter

        try:
            redis_store = RedisLaunchStore(
                args.redis, args.launch, wait_for_redis=args.wait_for_redis, lease=args.lease
            )
            settings["rate_limiter"] = RedisRateLimiter(args.redis)
        except ValueError as exc:
            raise CLIError(str(exc), EXIT_USAGE) from None
        try:
            await redis_store.check()
        except LaunchStoreError as exc:
            await redis_store.close()
            raise CLIError(f"{exc}; nobody was dialed", EXIT_USAGE) from None
        store = redis_store
        where = f"launch {args.launch!r} in {redis_store.description.split(' in ', 1)[1]} as worker {redis_store.worker}"
        results = args.results or default_results_path(args.leads, redis_store.worker.replace(":", "-"))
    elif args.no_journal:
        where = "no journal: a rerun cannot tell who was dialed"
        results = args.results or default_results_path(args.leads)
    else:
        journal = args.journal or default_journal_path(args.leads)
        store = FileLaunchStore(journal)
        where = f"journal {journal}"
        results = args.results or default_results_path(args.leads)
    summary = LaunchSummary()
    client = _client(args, **settings)
    progress = _progress(args)
    async with client:
        try:
            await launch_from_csv(
                client,
                args.leads,
                agent_id=args.agent_id,
                number_id=args.number_id,
                store=store,
                key_column=args.key_column,
                results=results,
                max_in_flight=args.max_in_flight,
                progress=progress,
                summary=summary,
                announce=(f"recording to {where}" if store else where) + f"; results in {results}",
                pace=Pace(args.rate_limit),
            )
        except asyncio.CancelledError:
            summary.interrupted = True
            print_summary(summary, store=where if store else None, results=results, rerun=rerun)
            raise
        except LaunchStoreError as exc:
            if summary.done == 0:  # could not start: locked journal, unreachable Redis
                raise CLIError(f"{exc}; nobody was dialed", EXIT_USAGE) from None
            summary.interrupted = True
            print_summary(summary, store=where if store else None, results=results, rerun=rerun)
            raise CLIError(
                f"{exc}; the launch stopped. Rerun the same command when that is fixed", EXIT_FAILED
            ) from None
    print_summary(summary, store=where if store else None, results=results, rerun=rerun)
    return EXIT_OK if summary.ok else EXIT_FAILED


async def _run_launch_status(args: argparse.Namespace) -> int:
    from .._types import key_fingerprint
    from ..fleet import launch_status
    from ._common import print_table

    key = _api_key(args)
    try:
        report = await launch_status(args.redis, args.launch, scope=key_fingerprint(key))
    except ValueError as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None
    done = f"{report.settled}" + (f" of {report.total}" if report.total is not None else "")
    rows = [
        ("launched", str(report.launched)),
        ("failed", str(report.failed)),
        ("unknown", str(report.unknown)),
        ("in flight", str(report.in_flight)),
        ("duplicates", str(report.duplicates)),
        ("settled", done),
        ("run", str(report.run)),
        ("workers alive", ", ".join(sorted(report.workers)) or "none"),
    ]
    print_table(f"Launch {report.launch!r}", rows)
    return EXIT_OK


async def _run_usage_report(args: argparse.Namespace) -> int:
    import datetime as dt

    from ..report import time_zone, usage_report

    try:
        zone = time_zone(args.tz)
    except ValueError:
        raise CLIError(
            f"--tz: unknown time zone {args.tz!r}; use an IANA name such as Europe/Amsterdam", EXIT_USAGE
        ) from None
    suffix = os.path.splitext(args.out)[1].lower()
    if args.out == "-" or suffix not in ("", ".html", ".htm"):
        raise CLIError(f"--out {args.out}: the report is an HTML file; name it .html", EXIT_USAGE)
    _writable(args.out)
    if args.end_date is None:
        args.end_date = dt.datetime.now(zone).date().isoformat()
    start, end = _check_period(args, tz=zone)
    if args.start_date is None:
        start = end - dt.timedelta(days=30) + dt.timedelta(milliseconds=1)
        args.start_date = start.date().isoformat()
    progress = _progress(args)
    async with _client(args) as client:
        with progress.bar("reading usage logs") as bar:
            stats = await usage_report(
                client,
                args.out,
                start_date=start,
                end_date=end,
                tz=args.tz,
                title=args.title,
                progress=_paced_progress(bar, args.rate_limit, 1000),
            )
    share = f"{100 * stats.byok_share:.1f} %" if stats.byok_share is not None else "-"
    print(
        f"wrote {args.out}: {stats.calls} calls, {stats.minutes:.1f} minutes, BYOK {share} "
        f"({args.start_date} to {args.end_date}, {args.tz})"
    )
    return EXIT_OK


async def _run_mock(args: argparse.Namespace) -> int:
    from ..testing import _cli as fake_server

    return await fake_server.run(args, prog="flireo")


async def _run_demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    if args.calls < 1:
        raise CLIError("--calls must be at least 1", EXIT_USAGE)
    return await run_demo(out_dir=args.out, calls=args.calls, progress=_progress(args))


# -- entry point ---------------------------------------------------------------------------------


def _fail(message: str, code: int) -> int:
    print(f"flireo: error: {message}", file=sys.stderr)
    return code


def _stdout_closed() -> int:
    """The reader of our stdout went away (``flireo export usage --out - | head``): that is how a
    pipe normally ends, so say nothing. Later writes and the interpreter's final flush go to
    /dev/null instead of failing again on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is no real file (tests capture it)
        pass
    return EXIT_PIPE_CLOSED


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``flireo`` command with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], Coroutine[Any, Any, int]] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    base_url = getattr(args, "base_url", None) or os.environ.get("FLIREO_BASE_URL") or "the API"
    args.progress_ui = Progress(quiet=getattr(args, "quiet", False))
    timeout = getattr(args, "timeout", DEFAULT_TIMEOUT)
    notes = RetryNotes(
        args.progress_ui,
        timeout=timeout,
        max_retries=MAX_RETRIES,
        show=not getattr(args, "quiet", False),
    )
    with _listening(notes):
        return _run(handler, args, base_url, notes)


@contextlib.contextmanager
def _listening(handler: logging.Handler) -> Iterator[None]:
    """``handler`` receives the SDK's INFO records while the command runs. Handlers already
    there (``FLIREO_LOG``) keep the level they had."""
    from .._logging import logger

    level = logger.level
    lowered = level == logging.NOTSET or level > logging.INFO
    pinned = []
    if lowered:
        for other in logger.handlers:
            if other.level == logging.NOTSET:
                other.setLevel(level or logging.WARNING)
                pinned.append(other)
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        if lowered:
            logger.setLevel(level)
            for other in pinned:
                other.setLevel(logging.NOTSET)


def _connect_reason(text: str) -> str:
    """The cause of a failed connect, said once: ``[Errno 111] Connect call failed ('127.0.0.1',
    8080)`` names the address the message already gave; the errno's text is the news."""
    found = re.search(r"\[Errno (\d+)\]", text)
    if found is not None:
        return os.strerror(int(found.group(1))).lower()
    return text.split(": ", 1)[1] if text.startswith("cannot connect to ") and ": " in text else text


def _connection_failure(exc: APIConnectionError, base_url: str, notes: RetryNotes) -> str:
    """What a request that got no answer means, worded by its method: a read changed nothing,
    a write may or may not have been carried out."""
    if not exc.sent:
        attempts = notes.attempts_for(exc.method)
        tries = f" ({attempts} attempts)" if attempts > 1 else ""
        return f"cannot reach {base_url}{tries}: {_connect_reason(str(exc))}"
    path = exc.url
    try:
        from yarl import URL

        path = URL(exc.url).path
    except ValueError:
        pass
    attempts = notes.attempts_for(exc.method)
    tries = f"on each of {attempts} attempts" if attempts > 1 else "(1 attempt)"
    if isinstance(exc, APITimeoutError):
        what = f"no answer from {base_url}: {exc.method} {path} got no response within {notes.timeout:g} s {tries}"
    else:
        what = f"{exc.method} {path} to {base_url} failed {tries}: the connection broke before an answer came"
    if exc.method in ("GET", "HEAD", "OPTIONS"):
        outcome = "nothing was changed (it only reads); try again later or with a larger --timeout"
    else:
        outcome = f"the {exc.method} may or may not have been carried out: check before repeating it"
    return f"{what}; {outcome}"


def _run(
    handler: Callable[[argparse.Namespace], Coroutine[Any, Any, int]],
    args: argparse.Namespace,
    base_url: str,
    notes: RetryNotes,
) -> int:
    try:
        return asyncio.run(handler(args))
    except BrokenPipeError:
        return _stdout_closed()
    except CLIError as exc:
        return _fail(exc.message, exc.code)
    except KeyboardInterrupt:
        code: int = getattr(args, "ctrl_c_exit", EXIT_INTERRUPTED)
        if code != EXIT_OK:  # Ctrl-C is how `flireo mock` is meant to stop
            print("flireo: interrupted", file=sys.stderr)
        return code
    except AuthenticationError:
        return _fail(
            "the API key was rejected (401 Unauthorized): check FLIREO_API_KEY or --api-key", EXIT_USAGE
        )
    except PermissionDeniedError as exc:
        return _fail(f"permission denied (403): {exc.message}", EXIT_USAGE)
    except APIConnectionError as exc:
        return _fail(_connection_failure(exc, base_url, notes), EXIT_FAILED)
    except APIStatusError as exc:
        return _fail(f"the API answered {exc}", EXIT_FAILED)
    except APIResponseValidationError as exc:
        return _fail(f"unexpected response from the API: {exc}", EXIT_FAILED)
    except FlireoError as exc:  # configuration: bad base URL, journal in use, ...
        return _fail(str(exc), EXIT_USAGE)
    except OSError as exc:
        return _fail(f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}", EXIT_USAGE)
