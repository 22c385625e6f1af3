"""The usage report: totals equal the server's state, text from the API is escaped, an empty
period still makes a page, the chart is plain SVG, and the page renders in a real browser."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest

from flireo_async import AsyncFlireo
from flireo_async.report import Totals, UsageStats, render_chart, render_html, usage_report
from flireo_async.testing import FakeFlireo, run_in_thread
from tests.test_cli import flireo, one_line_error

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
AGENTS = ("Support", "Sales <b>bold</b>", "<script>alert('x')</script>", None)
NUMBERS = ("+31850835037", "+31850000001", "+3185 & <i>")


def vary(logs: list[dict[str, Any]]) -> None:
    """Give seeded logs different agents, numbers and own-key use (in place)."""
    for i, log in enumerate(logs):
        log["agent_name"] = AGENTS[i % len(AGENTS)]
        log["phone_number"] = NUMBERS[i % len(NUMBERS)]
        log["byok_llm"] = i % 4 == 0
        log["byok_tts"] = i % 6 == 0
        log["byok_stt"] = i % 9 == 0


def expected(logs: list[dict[str, Any]], low: datetime, high: datetime, tz: str = "UTC") -> dict[str, Any]:
    """The report's figures computed straight from the server's records."""
    zone = ZoneInfo(tz)
    kept = [
        log for log in logs if low <= datetime.fromisoformat(log["created_at"].replace("Z", "+00:00")) <= high
    ]
    byok = [log for log in kept if log["byok_stt"] or log["byok_llm"] or log["byok_tts"]]
    agents: Counter[str] = Counter()
    numbers: Counter[str] = Counter()
    days: Counter[date] = Counter()
    for log in kept:
        agents[log["agent_name"] or "(none)"] += log["duration_sec"]
        numbers[log["phone_number"] or "(none)"] += log["duration_sec"]
        created = datetime.fromisoformat(log["created_at"].replace("Z", "+00:00"))
        days[created.astimezone(zone).date()] += log["duration_sec"]
    return {
        "calls": len(kept),
        "seconds": sum(log["duration_sec"] for log in kept),
        "byok": len(byok),
        "llm": sum(bool(log["byok_llm"]) for log in kept),
        "agents": dict(agents),
        "numbers": dict(numbers),
        "days": dict(days),
    }


@pytest.fixture
async def fake() -> AsyncIterator[FakeFlireo]:
    async with FakeFlireo(rate_limit=None, speed=100, seed=9) as server:
        yield server


@pytest.fixture
async def client(fake: FakeFlireo) -> AsyncIterator[AsyncFlireo]:
    async with AsyncFlireo(api_key=fake.api_key, base_url=fake.url, rate_limit=None) as c:
        yield c


@pytest.fixture
def fake_in_thread() -> Iterator[FakeFlireo]:
    """A fake server for the command, which runs its own event loop."""
    with run_in_thread(rate_limit=None, speed=100, seed=3) as server:
        yield server


@pytest.fixture
def env(fake_in_thread: FakeFlireo) -> dict[str, str]:
    return {"FLIREO_API_KEY": fake_in_thread.api_key, "FLIREO_BASE_URL": fake_in_thread.url}


# -- totals --------------------------------------------------------------------------------------


async def test_totals_match_the_server(fake: FakeFlireo, client: AsyncFlireo, tmp_path: Path) -> None:
    # 2,600 logs 17 minutes apart: about 31 days, three pages of 1,000.
    vary(fake.seed_usage_logs(2600, start=START - timedelta(days=1), step=timedelta(minutes=17)))
    out = tmp_path / "report.html"
    seen: list[tuple[int, int | None]] = []
    stats = await usage_report(
        client,
        out,
        start_date="2026-01-01",
        end_date="2026-01-20",
        progress=lambda done, total: seen.append((done, total)),
    )
    want = expected(
        fake.state.usage_logs, START, datetime(2026, 1, 20, 23, 59, 59, 999000, tzinfo=timezone.utc)
    )
    assert 1000 < want["calls"] < 2600  # the period cuts both ends off
    assert stats.calls == want["calls"]
    assert stats.seconds == want["seconds"]
    assert stats.total.byok_calls == want["byok"]
    assert stats.byok_llm == want["llm"]
    assert stats.byok_share == pytest.approx(want["byok"] / want["calls"])
    assert {name: t.seconds for name, t in stats.by_agent.items()} == want["agents"]
    assert {name: t.seconds for name, t in stats.by_number.items()} == want["numbers"]
    assert {day: t.seconds for day, t in stats.by_day.items()} == want["days"]
    assert [day for day, _ in stats.days()] == [date(2026, 1, d) for d in range(1, 21)]
    assert seen[-1] == (want["calls"], want["calls"])  # progress after every page
    assert len(seen) == -(-want["calls"] // 1000)

    page = out.read_text(encoding="utf-8")
    assert f"{want['calls']:,}" in page
    assert f"{want['seconds'] / 60:,.1f}" in page
    assert f"{100 * want['byok'] / want['calls']:.1f} %" in page
    assert page.count("<rect") == 20  # one bar per day of the period


async def test_days_are_counted_in_the_given_time_zone(
    fake: FakeFlireo, client: AsyncFlireo, tmp_path: Path
) -> None:
    # 22:30 and 23:30 UTC on Jan 1 are 23:30 on Jan 1 and 00:30 on Jan 2 in Amsterdam (UTC+1).
    logs = fake.seed_usage_logs(
        2, start=datetime(2026, 1, 1, 22, 30, tzinfo=timezone.utc), step=timedelta(hours=1)
    )
    stats = await usage_report(
        client, tmp_path / "r.html", start_date="2026-01-01", end_date="2026-01-02", tz="Europe/Amsterdam"
    )
    assert {day: t.calls for day, t in stats.by_day.items()} == {date(2026, 1, 1): 1, date(2026, 1, 2): 1}
    assert stats.start == datetime(2026, 1, 1, tzinfo=ZoneInfo("Europe/Amsterdam"))
    utc = await usage_report(client, tmp_path / "u.html", start_date="2026-01-01", end_date="2026-01-01")
    assert utc.calls == 2
    assert utc.seconds == sum(log["duration_sec"] for log in logs)


async def test_bad_arguments_name_the_field(client: AsyncFlireo, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tz: unknown time zone 'Mars/Olympus'"):
        await usage_report(
            client, tmp_path / "r.html", start_date="2026-01-01", end_date="2026-01-02", tz="Mars/Olympus"
        )
    with pytest.raises(ValueError, match=r"start_date .* is after end_date"):
        await usage_report(client, tmp_path / "r.html", start_date="2026-02-01", end_date="2026-01-02")
    with pytest.raises(ValueError, match="invalid date"):
        await usage_report(client, tmp_path / "r.html", start_date="soon", end_date="2026-01-02")
    assert not (tmp_path / "r.html").exists()


# -- the page ------------------------------------------------------------------------------------


async def test_text_from_the_api_is_escaped(fake: FakeFlireo, client: AsyncFlireo) -> None:
    vary(fake.seed_usage_logs(40, start=START, step=timedelta(hours=1)))
    out = io.StringIO()
    await usage_report(client, out, start_date="2026-01-01", end_date="2026-01-02", title="Q1 <Acme & Co>")
    page = out.getvalue()
    for raw in ("<script>", "<b>bold</b>", "<i>", "<Acme"):
        assert raw not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "Sales &lt;b&gt;bold&lt;/b&gt;" in page
    assert "+3185 &amp; &lt;i&gt;" in page
    assert "Q1 &lt;Acme &amp; Co&gt;" in page
    assert "(none)" in page  # logs without an agent name
    # The only markup is ours: every tag in the page is one the renderer writes.
    tags = set(re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", page))
    assert tags <= {"html", "head", "meta", "title", "style", "body", "main", "h1", "h2", "p", "div",
                    "svg", "line", "text", "rect", "table", "thead", "tbody", "tr", "th", "td", "footer"}  # fmt: skip


async def test_the_page_loads_nothing(fake: FakeFlireo, client: AsyncFlireo) -> None:
    fake.seed_usage_logs(10, start=START)
    out = io.StringIO()
    await usage_report(client, out, start_date="2026-01-01", end_date="2026-01-01")
    page = out.getvalue()
    for loader in ("<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import"):
        assert loader not in page
    assert re.findall(r"https?://[^\s\"']+", page) == [
        "http://www.w3.org/2000/svg"
    ]  # a namespace, not a fetch


async def test_an_empty_period_still_makes_a_page(
    fake: FakeFlireo, client: AsyncFlireo, tmp_path: Path
) -> None:
    fake.seed_usage_logs(50, start=START)
    out = tmp_path / "empty.html"
    stats = await usage_report(client, out, start_date="2025-06-01", end_date="2025-06-30")
    assert stats.calls == 0
    assert stats.seconds == 0
    assert stats.byok_share is None
    assert stats.by_agent == {} == stats.by_day
    page = out.read_text(encoding="utf-8")
    assert "No calls in this period" in page
    assert "<rect" not in page
    assert "2025-06-01 to 2025-06-30 (UTC)" in page


def test_the_chart_is_well_formed_svg() -> None:
    days = [(date(2026, 3, d), Totals(calls=d, seconds=600 * d)) for d in range(1, 32)]
    svg = ET.fromstring(render_chart(days))
    ns = "{http://www.w3.org/2000/svg}"
    rects = svg.findall(f"{ns}rect")
    assert len(rects) == 31
    heights = [float(r.get("height", "0")) for r in rects]
    assert heights == sorted(heights)  # minutes grow day by day, and so do the bars
    assert heights[-1] > 0
    assert rects[0].findtext(f"{ns}title") == "2026-03-01: 10.0 min, 1 calls"
    labels = [t.text for t in svg.findall(f"{ns}text")]
    assert "Mar 01" in labels
    assert "Mar 31" in labels


def test_stats_keep_no_rows() -> None:
    """Adding logs grows counters, not lists: the same days, agents and numbers keep the same size."""
    from flireo_async.models import UsageLog

    stats = UsageStats(start=START, end=START + timedelta(days=1), tz="UTC")
    for i in range(5000):
        stats.add(
            UsageLog(
                id=str(i), duration_sec=60, created_at=START + timedelta(seconds=i), agent_name=f"a{i % 3}"
            )
        )
    assert stats.calls == 5000
    assert stats.minutes == 5000
    assert len(stats.by_agent) == 3
    assert len(stats.by_day) == 1
    assert not any(isinstance(getattr(stats, f.name), list) for f in attrs.fields(UsageStats))


# -- the command ---------------------------------------------------------------------------------


def test_usage_report_command(fake_in_thread: FakeFlireo, env: dict[str, str], tmp_path: Path) -> None:
    vary(fake_in_thread.seed_usage_logs(300, start=START, step=timedelta(minutes=30)))
    out = tmp_path / "report.html"
    run = flireo(
        "usage", "report", "--start-date", "2026-01-02", "--end-date", "2026-01-04", "--tz", "Europe/Amsterdam",
        "--out", str(out), "--timeout", "10", "--rate-limit", "600", env=env,
    )  # fmt: skip
    assert run.code == 0, run.err
    zone = ZoneInfo("Europe/Amsterdam")
    want = expected(
        fake_in_thread.state.usage_logs,
        datetime(2026, 1, 2, tzinfo=zone),
        datetime(2026, 1, 4, 23, 59, 59, 999000, tzinfo=zone),
        "Europe/Amsterdam",
    )
    assert f"wrote {out}: {want['calls']} calls, {want['seconds'] / 60:.1f} minutes" in run.out
    assert out.read_text(encoding="utf-8").count("<rect") == 3
    usage = [r for r in fake_in_thread.requests if r.path == "/usage"]
    assert usage
    assert usage[0].query["start_date"].startswith("2026-01-01T23:00:00")  # midnight in Amsterdam


def test_usage_report_defaults_to_the_last_30_days(
    fake_in_thread: FakeFlireo, env: dict[str, str], tmp_path: Path
) -> None:
    fake_in_thread.seed_usage_logs(20)  # ending now
    out = tmp_path / "report.html"
    run = flireo("usage", "report", "--out", str(out), env=env)
    assert run.code == 0, run.err
    assert "wrote" in run.out
    assert "20 calls" in run.out
    assert out.read_text(encoding="utf-8").count("<rect") == 30


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--tz", "Mars/Olympus"), "--tz: unknown time zone 'Mars/Olympus'"),
        (
            ("--start-date", "2026-02-01", "--end-date", "2026-01-01"),
            "--start-date 2026-02-01 is after --end-date",
        ),
        (("--end-date", "yesterday"), "--end-date: invalid date 'yesterday'"),
        (("--timeout", "0"), "--timeout must be"),
        (("--rate-limit", "0"), "--rate-limit must be at least 1"),
    ],
)
def test_usage_report_rejects_bad_input(
    fake_in_thread: FakeFlireo,
    env: dict[str, str],
    tmp_path: Path,
    args: tuple[str, ...],
    message: str,
) -> None:
    out = tmp_path / "r.html"
    run = flireo("usage", "report", "--out", str(out), *args, env=env)
    assert run.code == 2
    one_line_error(run, message)
    assert not out.exists()
    assert fake_in_thread.requests == []


def test_usage_report_needs_an_html_file(env: dict[str, str], tmp_path: Path) -> None:
    run = flireo("usage", "report", "--out", str(tmp_path / "r.pdf"), env=env)
    assert run.code == 2
    one_line_error(run, "the report is an HTML file")


# -- in a real browser ---------------------------------------------------------------------------

BAR_RGB = (0x2F, 0x6F, 0xDF)


def browser() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI installs chromium (.ci/run): the rendering test must run there")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def test_the_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    image = pytest.importorskip("PIL.Image")
    stats = UsageStats(start=START, end=START + timedelta(days=13, hours=23), tz="UTC")
    from flireo_async.models import UsageLog

    for day in range(14):
        for call in range(day + 1):
            stats.add(
                UsageLog(
                    id=f"{day}-{call}",
                    duration_sec=300,
                    created_at=START + timedelta(days=day, minutes=call),
                    agent_name="Support",
                    phone_number="+31850835037",
                )
            )
    page = tmp_path / "report.html"
    page.write_text(render_html(stats), encoding="utf-8")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--screenshot={shot}", "--window-size=1200,900", page.as_uri(),
        ],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    with image.open(shot) as png:
        rgb = png.convert("RGB")
        assert rgb.size == (1200, 900)
        data = rgb.tobytes()
    pixels = [tuple(data[i : i + 3]) for i in range(0, len(data), 3)]
    not_white = sum(1 for p in pixels if p != (255, 255, 255))
    bars = sum(1 for p in pixels if all(abs(a - b) <= 8 for a, b in zip(p, BAR_RGB, strict=True)))
    assert not_white > 20_000  # text, cards, tables: not a blank page
    assert bars > 5_000  # the chart's bars were drawn


def test_the_axis_top_has_round_quarters() -> None:
    from flireo_async.report import _nice_ceiling

    for value, top in [
        (0, 1),
        (1, 1),
        (7, 8),
        (99, 100),
        (101, 120),
        (210, 240),
        (2550, 3000),
        (8001, 10000),
    ]:
        assert _nice_ceiling(value) == pytest.approx(top)
    for small in (0.7, 13, 377, 4999, 123456):
        ceiling = _nice_ceiling(small)
        assert small <= ceiling < small * 1.34  # never far above the tallest bar
