"""Streaming exports of usage logs, calls and campaign leads to CSV or JSON Lines.

Rows are written page by page as the paginator delivers them, so memory stays at a few pages
whatever the size of the export::

    async with AsyncFlireo() as client:
        rows = await export_usage(client, "usage.csv", start_date="2026-01-01")

CSV columns are the model's wire field names in the order of the spec. Nested objects and
lists are JSON-encoded in their cell, date-times are ISO 8601 UTC with milliseconds (the API's
format), booleans are ``true``/``false``, and an absent or null value is an empty cell. JSON
Lines holds one object per line, exactly as :func:`flireo_async._convert.encode` produces it
(unknown keys the server sent are kept).

A path is written to a temporary file beside it and renamed into place when the export is
complete, so a failed export never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import os
import stat
import tempfile
import types
import typing
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any, Literal, Union

import attrs

from . import _json
from ._convert import encode, format_datetime, parse_datetime
from ._pagination import AsyncPaginator
from ._types import UNSET, UnsetType
from .models import Call, CampaignLead, UsageLog

if TYPE_CHECKING:
    from ._client import AsyncFlireo

__all__ = [
    "check_page_size",
    "date_bound",
    "ExportFormat",
    "ProgressCallback",
    "DateLike",
    "columns",
    "export_usage",
    "export_calls",
    "export_leads",
    "open_atomic",
]

ExportFormat = Literal["csv", "jsonl"]
"""``"csv"`` or ``"jsonl"`` (JSON Lines)."""

ProgressCallback = Callable[[int, int | None], object]
"""Called after every page with ``(rows written so far, total rows or None when unknown)``."""

DateLike = Union[_dt.datetime, _dt.date, str]
"""A filter bound: a datetime (naive = UTC), a date, or an ISO 8601 string.

A date alone means the whole day: midnight for ``start_date``, the last millisecond of the day
for ``end_date``.
"""

MAX_PAGE_SIZE = 1000
"""The API's largest page (``limit``)."""


def columns(model: type) -> list[str]:
    """The CSV columns of a model: its wire field names, in the order of the spec's properties
    (the generator keeps that order in the model's fields)."""
    return [
        field.metadata.get("wire", field.name)
        for field in attrs.fields(model)
        if not field.metadata.get("extra")
    ]


async def export_usage(
    client: AsyncFlireo,
    out: str | os.PathLike[str] | IO[str],
    *,
    format: ExportFormat = "csv",
    start_date: DateLike | None = None,
    end_date: DateLike | None = None,
    page_size: int = MAX_PAGE_SIZE,
    progress: ProgressCallback | None = None,
) -> int:
    """Write the usage logs (``GET /usage``) to ``out``; return the number of rows written.

    ``out`` is a path or a text file object (opened with ``newline=""`` for CSV). The date
    filters are passed to the API; see :data:`DateLike`.
    """
    listing = client.usage.list(
        start_date=date_bound(start_date, end=False),
        end_date=date_bound(end_date, end=True),
        limit=check_page_size(page_size),
    )
    return await _export(listing, UsageLog, out, format, progress)


async def export_calls(
    client: AsyncFlireo,
    out: str | os.PathLike[str] | IO[str],
    *,
    format: ExportFormat = "csv",
    start_date: DateLike | None = None,
    end_date: DateLike | None = None,
    status: str | None = None,
    page_size: int = MAX_PAGE_SIZE,
    progress: ProgressCallback | None = None,
) -> int:
    """Write the calls (``GET /calls``) to ``out``; return the number of rows written.

    Filters (``start_date``, ``end_date``, ``status``) are passed to the API. Transcripts
    (``messages``) and ``analysis_result`` are JSON-encoded in their CSV cells.
    """
    listing = client.calls.list(
        start_date=date_bound(start_date, end=False),
        end_date=date_bound(end_date, end=True),
        status=status if status is not None else UNSET,
        limit=check_page_size(page_size),
    )
    return await _export(listing, Call, out, format, progress)


async def export_leads(
    client: AsyncFlireo,
    campaign_id: str,
    out: str | os.PathLike[str] | IO[str],
    *,
    format: ExportFormat = "csv",
    start_date: DateLike | None = None,
    end_date: DateLike | None = None,
    page_size: int = MAX_PAGE_SIZE,
    progress: ProgressCallback | None = None,
) -> int:
    """Write the leads of a campaign (``GET /campaigns/{id}/leads``) to ``out``; return the rows written.

    The API has no date filters for leads: ``start_date`` / ``end_date`` are applied here to
    each lead's ``created_at`` (and the progress total is then unknown).
    """
    low = date_bound(start_date, end=False)
    high = date_bound(end_date, end=True)
    listing = client.campaigns.list_leads(campaign_id, limit=check_page_size(page_size))
    keep: Callable[[Any], bool] | None = None
    if low is not UNSET or high is not UNSET:

        def keep(lead: Any) -> bool:
            created: _dt.datetime = lead.created_at
            return (low is UNSET or created >= low) and (high is UNSET or created <= high)

    return await _export(listing, CampaignLead, out, format, progress, keep=keep)


def check_page_size(value: int) -> int:
    """``value`` when it is a page size the API accepts; ``ValueError`` naming it otherwise."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be an integer from 1 to {MAX_PAGE_SIZE}, got {value!r}")
    return value


def date_bound(value: DateLike | None, *, end: bool, tz: _dt.tzinfo | None = None) -> Any:
    """A filter bound as an aware datetime (UNSET when not given): see :data:`DateLike`.

    A date alone and a naive datetime are taken in ``tz`` (default UTC). Raises ``ValueError``
    naming the value for a string that is no date.
    """
    zone = tz if tz is not None else _dt.timezone.utc
    if value is None:
        return UNSET
    if isinstance(value, str):
        text = value.strip()
        if len(text) == 10:  # YYYY-MM-DD
            try:
                value = _dt.date.fromisoformat(text)
            except ValueError:
                raise ValueError(f"invalid date {value!r}: use YYYY-MM-DD, e.g. 2026-01-07") from None
        else:
            try:
                value = parse_datetime(text)
            except ValueError:
                raise ValueError(
                    f"invalid date {value!r}: use YYYY-MM-DD or an ISO 8601 date-time such as 2026-01-07T10:00:00Z"
                ) from None
    if isinstance(value, _dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)
    if isinstance(value, _dt.date):
        moment = _dt.time(23, 59, 59, 999000) if end else _dt.time(0, 0)
        return _dt.datetime.combine(value, moment, tzinfo=zone)
    raise TypeError(f"expected a datetime, a date or an ISO 8601 string, got {type(value).__name__}")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    return _json.dumps_text(value)


def _cell_of(value: Any, wire: str, extra: dict[str, Any] | None) -> str:
    """The cell of one field as ``_cell(encode(item)[wire])`` would give it, for any value."""
    if value is UNSET:
        # encode() fills a key left UNSET from `extra` (a raw value the decoder kept there).
        value = extra.get(wire) if extra else None
    elif not (value is None or type(value) in _SCALARS):
        value = encode(value)
    return _cell(value)


_SCALARS = (str, int, float, bool)
# The value of the declared type, then an empty cell for null or for an absent field (UNSET)
# when the item kept no raw values in `extra`, inline; anything else through _cell_of.
_EMPTY = '"" if v is None or (v is U and not x) else cell(v, {wire!r}, x)'
_INLINE = {
    frozenset({str}): f"(v if type(v := o.{{name}}) is str else {_EMPTY})",
    frozenset({bool}): f'("true" if (v := o.{{name}}) is True else "false" if v is False else {_EMPTY})',
    frozenset({int}): f"(str(v) if type(v := o.{{name}}) is int else {_EMPTY})",
    frozenset({float}): f"(repr(v) if type(v := o.{{name}}) is float else {_EMPTY})",
    frozenset({_dt.datetime}): f"(fmt(v) if type(v := o.{{name}}) is dt else {_EMPTY})",
}
_row_functions: dict[type, Callable[[Any], list[str]]] = {}


def _csv_row(model: type) -> Callable[[Any], list[str]]:
    """A function compiled for ``model`` that gives an instance's CSV cells, in :func:`columns`
    order: the same cells as ``[_cell(encode(item).get(name)) for name in columns(model)]``,
    without building the encoded dict first. Scalars and date-times of the declared type are
    formatted inline; any other value goes through ``_cell_of``."""
    row = _row_functions.get(model)
    if row is not None:
        return row
    hints = typing.get_type_hints(model)
    extra_name = next((f.name for f in attrs.fields(model) if f.metadata.get("extra")), None)
    cells: list[str] = []
    for field in attrs.fields(model):
        if field.metadata.get("extra"):
            continue
        wire = field.metadata.get("wire", field.name)
        hint = hints[field.name]
        args = typing.get_args(hint) if typing.get_origin(hint) in (Union, types.UnionType) else (hint,)
        members = frozenset(args) - {UnsetType, type(None)}
        template = _INLINE.get(members, "cell(o.{name}, {wire!r}, x)")
        cells.append(template.format(name=field.name, wire=wire))
    source = "\n".join(
        [
            "def row(o):",
            f"    x = o.{extra_name}" if extra_name else "    x = None",
            f"    return [{', '.join(cells)}]",
        ]
    )
    env: dict[str, Any] = {"cell": _cell_of, "fmt": format_datetime, "dt": _dt.datetime, "U": UNSET}
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<flireo csv row {model.__name__}>", "exec"), env, namespace)  # noqa: S102
    row = namespace["row"]
    _row_functions[model] = row
    return row  # type: ignore[no-any-return]


def _file_mode(path: str) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    # Reading the umask means setting it; /proc tells it without that (Linux).
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def open_atomic(out: str | os.PathLike[str] | IO[str]) -> Iterator[IO[str]]:
    """A text stream for ``out``: a file object is used as it is; a path is written to a hidden
    temporary file beside it, renamed into place on success (with the mode a plain ``open``
    would give) and removed on failure."""
    if not isinstance(out, (str, os.PathLike)):
        yield out
        return
    path = os.fspath(out)
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".partial", dir=directory)
    try:
        # mkstemp makes the file private (0600); the finished file gets the mode a plain
        # open() would give it: the existing file's, else 0666 less the umask.
        os.fchmod(fd, _file_mode(path))
        with open(fd, "w", encoding="utf-8", newline="") as stream:
            yield stream
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


async def _export(
    listing: AsyncPaginator[Any, Any],
    model: type,
    out: str | os.PathLike[str] | IO[str],
    format: ExportFormat,
    progress: ProgressCallback | None,
    *,
    keep: Callable[[Any], bool] | None = None,
) -> int:
    if format not in ("csv", "jsonl"):
        raise ValueError(f"format must be 'csv' or 'jsonl', got {format!r}")
    rows = 0
    with open_atomic(out) as stream:
        names = columns(model)
        writer = csv.writer(stream, lineterminator="\n") if format == "csv" else None
        row = _csv_row(model)
        if writer is not None:
            writer.writerow(names)
        # Written as the paginator decodes them, a few rows at a time (see AsyncPaginator).
        async for batch, page, ends_page in listing._batches():
            items = batch if keep is None else [item for item in batch if keep(item)]
            if writer is not None:
                writer.writerows(map(row, items))
            else:
                stream.writelines(_json.dumps_text(encode(item)) + "\n" for item in items)
            rows += len(items)
            if progress is not None and ends_page:
                # Without pagination (leads) the one response is complete: its size is the total.
                total = None if keep is not None else (page.total if page.total is not None else rows)
                progress(rows, total)
        stream.flush()
    return rows
