"""Streaming exports: the files equal the server's state row for row, in constant memory."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from flireo_async import AsyncFlireo, InternalServerError
from flireo_async.export import columns, export_calls, export_leads, export_usage
from flireo_async.models import Call, CampaignLead, LeadCreate, UsageLog
from flireo_async.testing import FakeFlireo

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
async def fake() -> AsyncIterator[FakeFlireo]:
    async with FakeFlireo(rate_limit=None, speed=100, seed=5) as server:
        yield server


@pytest.fixture
async def client(fake: FakeFlireo) -> AsyncIterator[AsyncFlireo]:
    async with AsyncFlireo(api_key=fake.api_key, base_url=fake.url, rate_limit=None) as c:
        yield c


def cell(value: Any) -> str:
    """What a CSV cell must hold for a JSON value of the server."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def assert_csv_equals(path: Path, model: type, expected: list[dict[str, Any]]) -> None:
    header, rows = read_csv(path)
    assert header == columns(model)
    assert len(rows) == len(expected)
    for row, record in zip(rows, expected, strict=True):
        assert row == {name: cell(record.get(name)) for name in header}


def newest_first(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: r["created_at"], reverse=True)


def test_columns_follow_the_spec_order() -> None:
    assert columns(UsageLog)[:3] == ["id", "duration_sec", "byok_stt"]
    call_columns = columns(Call)
    assert call_columns[:3] == ["id", "status", "direction"]
    assert call_columns[-2:] == ["created_at", "updated_at"]  # not moved up with the required fields
    assert "extra" not in call_columns


async def test_usage_csv_equals_server_state(fake: FakeFlireo, client: AsyncFlireo, tmp_path: Path) -> None:
    fake.seed_usage_logs(2500, start=START)
    seen: list[tuple[int, int | None]] = []
    out = tmp_path / "usage.csv"
    rows = await export_usage(client, out, page_size=1000, progress=lambda d, t: seen.append((d, t)))
    assert rows == 2500
    assert seen == [(1000, 2500), (2000, 2500), (2500, 2500)]
    assert_csv_equals(out, UsageLog, newest_first(fake.state.usage_logs))
    assert next(iter(fake.requests_for("getUsage"))).query["limit"] == "1000"


async def test_usage_date_filters(fake: FakeFlireo, client: AsyncFlireo, tmp_path: Path) -> None:
    fake.seed_usage_logs(3 * 24 * 6, start=START, step=timedelta(minutes=10))  # 3 days
    out = tmp_path / "day2.csv"
    # A date alone covers the whole day; the start is a date-time string.
    rows = await export_usage(client, out, start_date="2026-01-02T00:00:00Z", end_date="2026-01-02")
    day2 = [log for log in fake.state.usage_logs if log["created_at"].startswith("2026-01-02")]
    assert rows == len(day2) == 144
    assert_csv_equals(out, UsageLog, newest_first(day2))
    query = fake.requests_for("getUsage")[-1].query
    assert query["start_date"] == "2026-01-02T00:00:00.000Z"
    assert query["end_date"] == "2026-01-02T23:59:59.999Z"


async def test_calls_jsonl_equals_server_state(fake: FakeFlireo, client: AsyncFlireo, tmp_path: Path) -> None:
    fake.seed_calls(1200, start=START, direction="mixed")
    out = tmp_path / "calls.jsonl"
    rows = await export_calls(client, out, format="jsonl", page_size=500)
    assert rows == 1200
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert lines == newest_first(list(fake.state.calls.values()))


async def test_calls_csv_with_nested_values_and_status_filter(
    fake: FakeFlireo, client: AsyncFlireo, tmp_path: Path
) -> None:
    fake.seed_calls(30, start=START, status="ended")
    fake.seed_calls(20, start=START + timedelta(days=1), status="failed")
    out = tmp_path / "calls.csv"
    rows = await export_calls(client, out, status="failed")
    failed = [c for c in fake.state.calls.values() if c["status"] == "failed"]
    assert rows == 20
    assert_csv_equals(out, Call, newest_first(failed))
    _, parsed = read_csv(out)
    assert json.loads(parsed[0]["messages"]) == failed[0]["messages"]  # transcripts stay JSON


@pytest.mark.parametrize("paginated", [True, False])
async def test_leads_equal_server_state(tmp_path: Path, paginated: bool) -> None:
    async with (
        FakeFlireo(rate_limit=None, leads_pagination=paginated, seed=3) as fake,
        AsyncFlireo(api_key=fake.api_key, base_url=fake.url, rate_limit=None) as client,
    ):
        agent = await client.agents.create(name="Leads")
        campaign = await client.campaigns.create(
            name="Q1",
            agent_id=agent.id,
            schedule_start_time="09:00:00",
            schedule_end_time="17:00:00",
            timezone="Europe/Amsterdam",
            leads=[
                LeadCreate(phone_number=f"+3161{i:07d}", variables={"name": f"Lead {i}"}) for i in range(1500)
            ],
        )
        seen: list[tuple[int, int | None]] = []
        out = tmp_path / "leads.csv"
        rows = await export_leads(client, campaign.id, out, progress=lambda d, t: seen.append((d, t)))
        assert rows == 1500
        assert seen[-1] == (1500, 1500)
        assert_csv_equals(out, CampaignLead, fake.state.leads_of(campaign.id))
        _, parsed = read_csv(out)
        assert json.loads(parsed[7]["variables"]) == {"name": "Lead 7"}

        future = await export_leads(client, campaign.id, tmp_path / "none.csv", start_date="2099-01-01")
        assert future == 0
        assert (tmp_path / "none.csv").read_text() == ",".join(columns(CampaignLead)) + "\n"


async def test_text_file_object_and_jsonl(fake: FakeFlireo, client: AsyncFlireo) -> None:
    fake.seed_usage_logs(7, start=START)
    buffer = io.StringIO()
    assert await export_usage(client, buffer, format="jsonl") == 7
    assert [json.loads(line) for line in buffer.getvalue().splitlines()] == newest_first(
        fake.state.usage_logs
    )


async def test_failed_export_leaves_no_file(fake: FakeFlireo, tmp_path: Path) -> None:
    fake.seed_usage_logs(2500, start=START)
    # The second page fails every time: the export stops and nothing is left under the name.
    async with AsyncFlireo(api_key=fake.api_key, base_url=fake.url, rate_limit=None, max_retries=0) as client:
        await export_usage(client, tmp_path / "ok.csv")
        fake.inject("getUsage", status_5xx=1.0)
        with pytest.raises(InternalServerError):
            await export_usage(client, tmp_path / "usage.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.csv"]


async def test_bad_arguments(client: AsyncFlireo, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="page_size"):
        await export_usage(client, tmp_path / "x.csv", page_size=5000)
    with pytest.raises(ValueError, match="invalid date"):
        await export_usage(client, tmp_path / "x.csv", start_date="yesterday")
    with pytest.raises(ValueError, match="format"):
        await export_usage(client, tmp_path / "x.csv", format="xml")  # type: ignore[arg-type]


async def test_compiled_csv_rows_equal_cells_of_the_encoded_items(
    fake: FakeFlireo, client: AsyncFlireo
) -> None:
    from flireo_async._convert import decode, encode
    from flireo_async.export import _cell, _csv_row

    def reference(item: Any, model: type) -> list[str]:
        data = encode(item)
        return [_cell(data.get(name)) for name in columns(model)]

    fake.seed_usage_logs(300, start=START)
    fake.seed_calls(300, start=START, direction="mixed")
    items: list[tuple[Any, type]] = [(log, UsageLog) async for log in client.usage.list(limit=1000)]
    items += [(call, Call) async for call in client.calls.list(limit=1000)]
    assert len(items) == 600
    cet = timezone(timedelta(hours=1))
    odd = [
        # UNSET, with the raw value kept in extra under its wire name, as lenient decoding does
        UsageLog(id="a", extra={"duration_sec": "12", "other": 1}),
        # None, a float field holding an int, a datetime in another zone, a naive datetime
        UsageLog(id="b", phone_number=None, cost=3, created_at=datetime(2026, 1, 1, 12, tzinfo=cet)),
        UsageLog(id="c", created_at=datetime(2026, 1, 1, 12), byok_llm=True, byok_tts=False, minutes_used=0),
        UsageLog(id="d", cost=0.1, call_type='ünïcode, "quoted"\nnewline'),
        decode({"id": "e", "created_at": "2026-01-07T10:00:00Z", "weird": [1, {"x": None}]}, UsageLog),
    ]
    items += [(item, UsageLog) for item in odd]
    for item, model in items:
        assert _csv_row(model)(item) == reference(item, model), item
