"""Pieces shared by the ``flireo`` commands: exit codes, the one-line error, progress and tables.

Progress goes to stderr and results to stdout, so ``flireo ... > out.txt`` keeps only results.
Progress bars use rich when it is installed (``pip install 'flireo-async[cli]'``) and fall back
to a plain one-line counter; both are off with ``--quiet`` or when stderr is not a terminal.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, TextIO

from .._logging import ATTEMPT_FAILED, STATUS_RETRIED

__all__ = [
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_USAGE",
    "EXIT_INTERRUPTED",
    "EXIT_PIPE_CLOSED",
    "CLIError",
    "Bar",
    "Progress",
    "Pace",
    "RetryNotes",
    "print_table",
]

EXIT_OK = 0
"""Everything worked."""
EXIT_FAILED = 1
"""Some items failed or have an unknown outcome, or the server could not be reached."""
EXIT_USAGE = 2
"""Bad arguments or input file, missing or rejected API key, unknown agent/number/campaign."""
EXIT_INTERRUPTED = 130
"""Stopped with Ctrl-C (128 + SIGINT, as shells report it)."""
EXIT_PIPE_CLOSED = 141
"""The reader of stdout closed it early (128 + SIGPIPE, as shells report a program ended by it)."""


class CLIError(Exception):
    """An error reported as one line on stderr, ending the command with ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Bar:
    """One progress line; ``update(done, total, info)`` as work advances. This one shows nothing."""

    def __enter__(self) -> Bar:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def update(self, done: int, total: int | None = None, info: str = "") -> None:
        """Show ``done`` of ``total`` (``None`` = unknown) with a short ``info`` text."""

    def close(self) -> None:
        """Finish the line."""


class _PlainBar(Bar):
    """``description: 120/200 info`` rewritten in place with a carriage return, 10 times a second."""

    def __init__(self, description: str, total: int | None, stream: TextIO) -> None:
        self._description = description
        self._total = total
        self._stream = stream
        self._last = 0.0
        self._text = ""
        self.width = 0

    def update(self, done: int, total: int | None = None, info: str = "") -> None:
        if total is not None:
            self._total = total
        of = f"/{self._total}" if self._total is not None else ""
        self._text = f"{self._description}: {done}{of}" + (f"  {info}" if info else "")
        now = time.monotonic()
        if now - self._last >= 0.1:
            self._last = now
            self._draw()

    def _draw(self) -> None:
        pad = max(0, self.width - len(self._text))
        self._stream.write("\r" + self._text + " " * pad)
        self._stream.flush()
        self.width = len(self._text)

    def close(self) -> None:
        if self._text:
            self._draw()
            self._stream.write("\n")
            self._stream.flush()
            self._text = ""
            self.width = 0


class _RichBar(Bar):
    def __init__(self, description: str, total: int | None, console: Any) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as RichProgress

        self._progress = RichProgress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=console,
        )
        self._task = self._progress.add_task(description, total=total, info="")
        self._progress.start()

    def update(self, done: int, total: int | None = None, info: str = "") -> None:
        if total is not None:
            self._progress.update(self._task, total=total)
        self._progress.update(self._task, completed=done, info=info)

    def close(self) -> None:
        self._progress.stop()


class Progress:
    """Makes progress bars on stderr: rich, plain text, or none (``enabled=False`` or not a TTY)."""

    def __init__(self, *, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = not quiet and _isatty(self.stream)
        self._console: Any = None
        self._plain: _PlainBar | None = None
        if self.enabled:
            try:
                from rich.console import Console
            except ImportError:
                self._console = None
            else:
                self._console = Console(file=self.stream)

    def bar(self, description: str, total: int | None = None) -> Bar:
        """A progress line for one piece of work; use it as a context manager."""
        if not self.enabled:
            return Bar()
        if self._console is not None:
            return _RichBar(description, total, self._console)
        self._plain = _PlainBar(description, total, self.stream)
        return self._plain

    def message(self, text: str) -> None:
        """A line on stderr that does not tangle with a progress bar being drawn."""
        plain = self._plain
        if plain is not None and plain.width:
            # Overwrite the bar's line; the bar is drawn again on its next update.
            text = "\r" + text.ljust(plain.width)
            plain.width = 0
        # Under rich, sys.stderr is redirected above the live bar while it runs.
        print(text, file=sys.stderr)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def print_table(title: str, rows: Sequence[tuple[str, str]], *, stream: TextIO | None = None) -> None:
    """A two-column table: rich when installed and writing to a terminal, aligned text otherwise."""
    out = stream if stream is not None else sys.stdout
    if _isatty(out):
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:
            pass
        else:
            table = Table(title=title, show_header=False, title_justify="left")
            table.add_column(style="bold")
            table.add_column()
            for name, value in rows:
                table.add_row(name, value)
            Console(file=out).print(table)
            return
    width = max((len(name) for name, _ in rows), default=0)
    print(title, file=out)
    for name, value in rows:
        print(f"  {name + ':':<{width + 1}} {value}", file=out)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


class Pace:
    """The progress text of work done one request at a time under a rate limit: whether the
    rate limit is what sets the speed (``paced at 100/min``) and when the work will end.

    ``clock`` (seconds, monotonic) and ``now`` (wall time, for the ETA) are injectable for tests.
    """

    PACED = 0.75
    """The share of the rate limit at or above which the work counts as paced by it."""

    def __init__(
        self,
        rate_limit: int | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], _dt.datetime] = _dt.datetime.now,
    ) -> None:
        self.rate_limit = rate_limit
        self._clock = clock
        self._now = now
        self._start = clock()

    def info(self, done: int, left: int | None) -> str:
        """``done`` requests made so far, ``left`` still to make (``None``: unknown)."""
        elapsed = self._clock() - self._start
        per_second = done / elapsed if done and elapsed > 0 else None
        paced = (
            self.rate_limit is not None
            and per_second is not None
            and done >= 2
            and per_second * 60 >= self.PACED * self.rate_limit
        )
        parts = [f"paced at {self.rate_limit}/min"] if paced else []
        if left is not None and left > 0:
            if paced:
                assert self.rate_limit is not None
                seconds: float | None = left * 60 / self.rate_limit
            else:
                seconds = left / per_second if per_second else None
            if seconds is not None and math.isfinite(seconds):
                end = self._now() + _dt.timedelta(seconds=seconds)
                parts.append(f"ETA {end:%H:%M} ({_duration(seconds)} left)")
        return " · ".join(parts)


_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RetryNotes(logging.Handler):
    """Shows each failed attempt of a request as it happens (``attempt 1/3: no answer within
    30 s; trying again``) and remembers how many attempts the last failure took."""

    def __init__(self, progress: Progress, *, timeout: float, max_retries: int, show: bool = True) -> None:
        super().__init__(logging.INFO)
        self.progress = progress
        self.show = show
        self.timeout = timeout
        self.max_retries = max_retries
        self.attempts: dict[str, int] = {}
        """Attempts made by the latest failed request, per method."""

    def _of(self, method: str, attempt: int) -> str:
        return f"attempt {attempt}/{self.max_retries + 1}" if method in _IDEMPOTENT else f"attempt {attempt}"

    def emit(self, record: logging.LogRecord) -> None:
        # The transport's records of a failed attempt are recognised by their format strings.
        args: Any = record.args
        if not isinstance(args, tuple) or record.msg not in (ATTEMPT_FAILED, STATUS_RETRIED):
            return
        try:
            if record.msg == ATTEMPT_FAILED:
                method, path, attempt, kind, suffix = (
                    str(args[0]),
                    str(args[1]),
                    int(args[2]),
                    args[3],
                    args[4],
                )
                retrying = bool(suffix)
                what = (
                    f"no answer within {self.timeout:g} s"
                    if kind == "APITimeoutError"
                    else "the connection failed"
                )
                then = f"; trying again ({self._of(method, attempt + 1)}, waiting up to {self.timeout:g} s)"
            else:
                method, path, status, attempt = str(args[0]), str(args[1]), args[2], int(args[3])
                what = f"the API answered {status}"
                then = (
                    "; trying again when the rate limit allows"
                    if status == 429
                    else f"; trying again in {float(args[4]):.1f} s"
                )
                retrying = True
        except (IndexError, TypeError, ValueError):  # a record of that format with other arguments
            return
        self.attempts[method] = attempt
        if self.show:
            self.progress.message(
                f"{method} {path}: {self._of(method, attempt)}: {what}" + (then if retrying else "")
            )

    def attempts_for(self, method: str) -> int:
        """How many attempts the latest failed ``method`` request made (1 when none was logged)."""
        return self.attempts.get(method, 1)
