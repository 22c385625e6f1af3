"""A usage report: one self-contained HTML file with a period's totals, minutes per day and
tables by agent and by number::

    async with AsyncFlireo() as client:
        stats = await usage_report(client, "report.html", start_date="2026-01-01", end_date="2026-01-31")

The usage logs are streamed from the paginator and added up as they arrive; no row is kept, so
memory depends on the number of days, agents and numbers, never on the number of calls. The
page needs no network to open: styles are inline and the chart is SVG drawn here (no plotting
library, and it stays sharp at any zoom). Every text that comes from the API is escaped.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
import os
from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING, Any

import attrs

from ._types import UNSET
from ._version import __version__
from .export import MAX_PAGE_SIZE, DateLike, check_page_size, date_bound, open_atomic

if TYPE_CHECKING:
    from ._client import AsyncFlireo
    from .models import UsageLog

__all__ = ["Totals", "UsageStats", "usage_report", "render_html", "render_chart", "time_zone"]

ProgressCallback = Callable[[int, int | None], object]


@attrs.define
class Totals:
    """Calls, seconds and calls that used at least one of the organization's own keys (BYOK)."""

    calls: int = 0
    seconds: int = 0
    byok_calls: int = 0

    @property
    def minutes(self) -> float:
        """``seconds`` in minutes."""
        return self.seconds / 60

    @property
    def byok_share(self) -> float | None:
        """The share (0..1) of calls that used an own key; ``None`` without calls."""
        return self.byok_calls / self.calls if self.calls else None


@attrs.define
class UsageStats:
    """The usage of one period, summed log by log with :meth:`add`.

    ``start`` and ``end`` are the period's bounds (aware datetimes) and ``tz`` the IANA zone
    whose calendar days ``by_day`` counts in. ``byok_stt``/``byok_llm``/``byok_tts`` count the
    calls that used the organization's own key for that part.
    """

    start: _dt.datetime
    end: _dt.datetime
    tz: str = "UTC"
    total: Totals = attrs.field(factory=Totals)
    byok_stt: int = 0
    byok_llm: int = 0
    byok_tts: int = 0
    by_day: dict[_dt.date, Totals] = attrs.field(factory=dict)
    by_agent: dict[str, Totals] = attrs.field(factory=dict)
    by_number: dict[str, Totals] = attrs.field(factory=dict)
    _zone: _dt.tzinfo = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        self._zone = time_zone(self.tz)

    @property
    def calls(self) -> int:
        """Calls in the period."""
        return self.total.calls

    @property
    def seconds(self) -> int:
        """Call seconds in the period."""
        return self.total.seconds

    @property
    def minutes(self) -> float:
        """Call minutes in the period."""
        return self.total.minutes

    @property
    def byok_share(self) -> float | None:
        """The share of calls that used at least one own key (``None`` without calls)."""
        return self.total.byok_share

    def add(self, log: UsageLog) -> None:
        """Count one usage log."""
        seconds = _seconds(log)
        stt, llm, tts = log.byok_stt is True, log.byok_llm is True, log.byok_tts is True
        byok = stt or llm or tts
        self.byok_stt += stt
        self.byok_llm += llm
        self.byok_tts += tts
        created = log.created_at
        day = created.astimezone(self._zone).date() if isinstance(created, _dt.datetime) else None
        groups = [
            self.total,
            _group(self.by_agent, _label(log.agent_name)),
            _group(self.by_number, _label(log.phone_number)),
        ]
        if day is not None:
            groups.append(_group(self.by_day, day))
        for totals in groups:
            totals.calls += 1
            totals.seconds += seconds
            totals.byok_calls += byok

    def days(self) -> list[tuple[_dt.date, Totals]]:
        """Every calendar day of the period (in ``tz``) with its totals, zero days included."""
        zone = time_zone(self.tz)
        first = self.start.astimezone(zone).date()
        last = self.end.astimezone(zone).date()
        out = []
        day = first
        while day <= last:
            out.append((day, self.by_day.get(day, Totals())))
            day += _dt.timedelta(days=1)
        return out


NO_VALUE = "(none)"
"""How a log without an agent name or a phone number is grouped."""


def _label(value: object) -> str:
    return value if isinstance(value, str) and value else NO_VALUE


def _group(groups: dict[Any, Totals], key: Any) -> Totals:
    totals = groups.get(key)
    if totals is None:
        totals = groups[key] = Totals()
    return totals


def _seconds(log: UsageLog) -> int:
    value = log.duration_sec
    if isinstance(value, int) and not isinstance(value, bool):
        return max(0, value)
    minutes = log.minutes_used  # the older shape
    if isinstance(minutes, int) and not isinstance(minutes, bool):
        return max(0, minutes) * 60
    return 0


def time_zone(name: str) -> _dt.tzinfo:
    """The IANA time zone ``name`` (``UTC``, ``Europe/Amsterdam``); ``ValueError`` naming it
    when there is no such zone."""
    if name.upper() == "UTC":
        return _dt.timezone.utc
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"tz: unknown time zone {name!r}; use an IANA name such as Europe/Amsterdam or UTC"
        ) from None


async def usage_report(
    client: AsyncFlireo,
    out: str | os.PathLike[str] | IO[str],
    *,
    start_date: DateLike,
    end_date: DateLike,
    tz: str = "UTC",
    title: str | None = None,
    page_size: int = MAX_PAGE_SIZE,
    progress: ProgressCallback | None = None,
) -> UsageStats:
    """Write the usage report of a period to ``out`` (a path or a text file); return its totals.

    ``start_date`` and ``end_date`` are included; a date alone is that whole day in ``tz`` (an
    IANA zone), and so is a datetime without a zone. Days in the chart are ``tz``'s calendar
    days. ``progress`` is called after every page with ``(logs so far, total)``. A path is
    written only when the report is complete.
    """
    zone = time_zone(tz)
    start = date_bound(start_date, end=False, tz=zone)
    end = date_bound(end_date, end=True, tz=zone)
    if start is UNSET or end is UNSET:
        raise ValueError("start_date and end_date are required")
    if start > end:
        raise ValueError(f"start_date ({start.isoformat()}) is after end_date ({end.isoformat()})")
    stats = UsageStats(start=start, end=end, tz=tz)
    pages = client.usage.list(start_date=start, end_date=end, limit=check_page_size(page_size)).pages()
    async for page in pages:
        for log in page.items:
            stats.add(log)
        if progress is not None:
            progress(stats.calls, page.total if page.total is not None else stats.calls)
    text = render_html(stats, title=title)
    with open_atomic(out) as stream:
        stream.write(text)
    return stats


# -- rendering -----------------------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _minutes(seconds: int) -> str:
    return f"{seconds / 60:,.1f}"


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "–"


def _nice_ceiling(value: float) -> float:
    """The smallest axis top at or above ``value`` whose quarters (the grid lines) are round:
    1, 1.2, 1.6, 2, 2.4, 3, 4, 6 or 8 times a power of ten."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 1.2, 1.6, 2, 2.4, 3, 4, 6, 8):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


CHART_WIDTH = 960
CHART_HEIGHT = 260
_BAR = "#2f6fdf"


def render_chart(days: Iterable[tuple[_dt.date, Totals]]) -> str:
    """An SVG bar chart of minutes per day, with a y axis, a few date labels and a tooltip per bar."""
    points = list(days)
    left, right, top, bottom = 56, 12, 12, 36
    width, height = CHART_WIDTH, CHART_HEIGHT
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_ceiling(max((t.minutes for _, t in points), default=0.0))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-labelledby="chart-title" class="chart">',
        '<title id="chart-title">Minutes per day</title>',
    ]
    for i in range(5):
        value = peak * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{value:,.4g}</text>'
        )
    count = max(len(points), 1)
    slot = plot_w / count
    bar_w = max(slot * 0.8, 1.0)
    label_every = max(1, math.ceil(count / 10))
    for i, (day, totals) in enumerate(points):
        x = left + i * slot + (slot - bar_w) / 2
        h = plot_h * totals.minutes / peak
        y = top + plot_h - h
        tip = f"{day.isoformat()}: {_minutes(totals.seconds)} min, {totals.calls} calls"
        parts.append(
            f'<rect x="{x:.2f}" y="{y:.2f}" width="{bar_w:.2f}" height="{h:.2f}" fill="{_BAR}">'
            f"<title>{_e(tip)}</title></rect>"
        )
        if i % label_every == 0 or i == count - 1:
            cx = left + i * slot + slot / 2
            parts.append(
                f'<text x="{cx:.1f}" y="{height - bottom + 18}" text-anchor="middle" class="axis">'
                f"{_e(day.strftime('%b %d'))}</text>"
            )
    parts.append(
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" class="baseline"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _table(heading: str, column: str, groups: dict[str, Totals], total: Totals) -> str:
    rows = sorted(groups.items(), key=lambda item: (-item[1].seconds, -item[1].calls, item[0]))
    body = "".join(
        "<tr>"
        f'<td class="name">{_e(name)}</td><td>{totals.calls:,}</td><td>{_minutes(totals.seconds)}</td>'
        f"<td>{_share(totals.seconds, total.seconds)}</td><td>{_share(totals.byok_calls, totals.calls)}</td>"
        "</tr>"
        for name, totals in rows
    )
    if not rows:
        body = '<tr><td colspan="5" class="empty">No calls in this period.</td></tr>'
    return (
        f"<h2>{_e(heading)}</h2><table><thead><tr><th>{_e(column)}</th><th>Calls</th>"
        "<th>Minutes</th><th>Share of minutes</th><th>BYOK share</th></tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2433;margin:0;background:#fff}
main{max-width:1000px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}
.period{color:#5b6475;margin:0 0 20px}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{flex:1 1 160px;border:1px solid #dde2ea;border-radius:8px;padding:12px 16px;background:#f7f9fc}
.card .value{font-size:26px;font-weight:600}.card .label{color:#5b6475;font-size:13px}
.chart{display:block;border:1px solid #dde2ea;border-radius:8px;background:#fff}
.chart .grid{stroke:#e8ecf2}.chart .baseline{stroke:#8a93a3}
.chart .axis{font-size:11px;fill:#5b6475}
table{border-collapse:collapse;width:100%}th,td{padding:6px 10px;border-bottom:1px solid #e8ecf2;text-align:right}
th{background:#f2f5f9;font-weight:600}td.name,th:first-child{text-align:left;overflow-wrap:anywhere}
td.empty{text-align:center;color:#5b6475}
footer{margin-top:28px;color:#8a93a3;font-size:12px}
"""


def render_html(stats: UsageStats, *, title: str | None = None) -> str:
    """The report page of ``stats``: a complete HTML document that loads nothing else."""
    zone = time_zone(stats.tz)
    first = stats.start.astimezone(zone)
    last = stats.end.astimezone(zone)
    period = f"{first:%Y-%m-%d} to {last:%Y-%m-%d} ({stats.tz})"
    heading = title or "Flireo usage report"
    total = stats.total
    byok = (
        f"{100 * total.byok_share:.1f} %" if total.byok_share is not None else "–",
        f"own STT key {stats.byok_stt:,} · LLM {stats.byok_llm:,} · TTS {stats.byok_tts:,}",
    )
    cards = [
        (f"{total.calls:,}", "calls"),
        (_minutes(total.seconds), "minutes"),
        (f"{total.seconds / total.calls / 60:.1f}" if total.calls else "–", "minutes per call"),
        (byok[0], f"BYOK share of calls ({byok[1]})"),
    ]
    card_html = "".join(
        f'<div class="card"><div class="value">{_e(value)}</div><div class="label">{_e(label)}</div></div>'
        for value, label in cards
    )
    chart = (
        render_chart(stats.days())
        if total.calls
        else '<p class="empty">No calls in this period: nothing to chart.</p>'
    )
    generated = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(heading)} · {_e(period)}</title><style>{_STYLE}</style></head>"
        f'<body><main><h1>{_e(heading)}</h1><p class="period">{_e(period)}</p>'
        f'<div class="cards">{card_html}</div>'
        f"<h2>Minutes per day</h2>{chart}"
        f"{_table('By agent', 'Agent', stats.by_agent, total)}"
        f"{_table('By number', 'Number', stats.by_number, total)}"
        f"<footer>Generated {_e(generated)} by flireo-async {_e(__version__)} from GET /usage.</footer>"
        "</main></body></html>\n"
    )
