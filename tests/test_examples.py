"""The programs in examples/ run against FakeFlireo and do what their docstrings say."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import socket
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import uvicorn

from flireo_async import AsyncFlireo
from flireo_async.testing import FakeFlireo, run_in_thread
from flireo_async.webhooks import EndOfCallReportMessage, StatusUpdateMessage, sign

from .conftest import import_file

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SECRET = "whsec_example_secret"


def load(name: str) -> ModuleType:
    return import_file(EXAMPLES / f"{name}.py", f"example_{name}")


def run_script(name: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeFlireo]:
    async with FakeFlireo(speed=20, rate_limit=None) as server:
        yield server


@pytest.fixture
async def client(fake: FakeFlireo) -> AsyncIterator[AsyncFlireo]:
    async with AsyncFlireo(api_key=fake.api_key, base_url=fake.url, rate_limit=None) as c:
        yield c


# -- FastAPI webhook receiver ----------------------------------------------------------------------


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, Any]]:
    """The example app served by uvicorn on a loopback port: (webhook URL, app)."""
    app = load("fastapi_webhooks").create_app(SECRET)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:

        async def started() -> None:
            while not server.started:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(started(), 10)
        yield f"http://127.0.0.1:{port}/flireo/webhook", app
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_fastapi_receiver_answers_an_inbound_call(
    fake: FakeFlireo, client: AsyncFlireo, receiver: tuple[str, Any]
) -> None:
    url, app = receiver
    agent = await client.agents.create(  # type: ignore[call-overload]  # a plain dict config
        name="Support",
        webhook_url=url,
        webhook_secret=SECRET,
        llm_config={
            "provider": "openai",
            "model": "gpt-4o-mini",
            "tools": [{"name": "lookup_customer", "description": "Find the caller"}],
        },
    )
    number = await client.numbers.create(phone_number="+31850835037", agent_id=agent.id)
    call = await fake.simulate_inbound_call(
        number.id,
        caller="+31612345678",
        tool_calls=[
            {"name": "lookup_customer", "arguments": {"phone": "+31612345678"}},
            {"name": "lookup_customer", "arguments": {"phone": "+31600000000"}},
        ],
        duration=10,
    )
    await call.wait()

    assert call.assistant_request is not None
    assert call.assistant_request.answer == "assistant"  # the known caller is greeted by name
    assert call.tool_calls[0].result == {"name": "Jan de Vries", "email": "jan@example.com"}
    assert call.tool_calls[1].error == "Customer not found"
    kinds = Counter(type(event).__name__ for event in app.state.events if event.call.id == call.id)
    assert kinds["EndOfCallReportMessage"] == 1
    assert kinds["StatusUpdateMessage"] >= 1
    assert all(d.status in (200, 204) for d in fake.webhook_deliveries)


async def test_fastapi_receiver_rejects_bad_signatures_and_ignores_redeliveries() -> None:
    app = load("fastapi_webhooks").create_app(SECRET)
    body = json.dumps(
        {
            "message": {
                "type": "end-of-call-report",
                "timestamp": "2026-01-07T12:00:00.000Z",
                "call": {"id": "call-1", "type": "outbound_phone_call", "status": "ended"},
                "duration_seconds": 42,
                "summary": "Appointment confirmed.",
            }
        }
    ).encode()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as http:
        forged = await http.post("/flireo/webhook", content=body, headers=sign(body, "another secret"))
        assert forged.status_code == 401
        assert forged.json() == {"error": "bad_signature"}
        unsigned = await http.post("/flireo/webhook", content=body)
        assert unsigned.status_code == 401
        assert app.state.events == []

        headers = sign(body, SECRET)
        first = await http.post("/flireo/webhook", content=body, headers=headers)
        again = await http.post("/flireo/webhook", content=body, headers=headers)  # a redelivery
    assert (first.status_code, again.status_code) == (204, 204)
    assert len(app.state.events) == 1
    report = app.state.events[0]
    assert isinstance(report, EndOfCallReportMessage)
    assert (report.call.id, report.duration_seconds) == ("call-1", 42)
    assert not isinstance(report, StatusUpdateMessage)


# -- launching a campaign from SQLite --------------------------------------------------------------


def make_db(path: Path, rows: list[tuple[str, str, str, int]]) -> None:
    launcher = load("launch_from_database")
    with sqlite3.connect(path) as db:
        db.execute(launcher.SCHEMA)
        db.executemany("INSERT INTO leads (campaign, name, phone, opted_out) VALUES (?, ?, ?, ?)", rows)
    db.close()


def outcomes(path: Path) -> dict[str, tuple[str | None, bool]]:
    """phone -> (outcome, has a call id)."""
    db = sqlite3.connect(path)
    try:
        return {
            phone: (outcome, call_id is not None)
            for phone, outcome, call_id in db.execute("SELECT phone, outcome, call_id FROM leads")
        }
    finally:
        db.close()


async def test_database_launch_calls_each_pending_lead_once(
    fake: FakeFlireo, client: AsyncFlireo, tmp_path: Path
) -> None:
    launcher = load("launch_from_database")
    db_path = tmp_path / "leads.db"
    make_db(
        db_path,
        [
            ("spring", "Jan", "+31612345678", 0),
            ("spring", "Piet", "+31 6 8765 4321", 0),  # normalised before sending
            ("spring", "Kees", "0612345670", 0),  # not E.164: failed, never sent
            ("spring", "Anna", "+31611111111", 1),  # opted out
            ("autumn", "Els", "+31622222222", 0),  # another campaign
        ],
    )
    agent = await client.agents.create(name="Reminders")

    counts = await launcher.launch_campaign(client, db_path, "spring", agent.id)

    assert counts == Counter({"launched": 2, "failed": 1})
    assert sorted(fake.dialed()) == ["+31612345678", "+31687654321"]
    rows = outcomes(db_path)
    assert rows["+31612345678"] == ("launched", True)
    assert rows["0612345670"] == ("failed", False)
    assert rows["+31611111111"] == (None, False)
    assert rows["+31622222222"] == (None, False)
    assert (tmp_path / "leads.db.spring.journal").exists()

    # The failed lead is fixed in the database; the rerun calls only that one.
    with sqlite3.connect(db_path) as db:
        db.execute("UPDATE leads SET phone = '+31612345670' WHERE name = 'Kees'")
    db.close()
    counts = await launcher.launch_campaign(client, db_path, "spring", agent.id)
    assert counts == Counter({"launched": 1})
    assert sorted(fake.dialed()) == ["+31612345670", "+31612345678", "+31687654321"]


async def test_database_launch_resumes_from_the_journal_after_a_crash(
    fake: FakeFlireo, client: AsyncFlireo, tmp_path: Path
) -> None:
    launcher = load("launch_from_database")
    db_path = tmp_path / "leads.db"
    make_db(db_path, [("spring", f"Lead {i}", f"+3161234{i:04d}", 0) for i in range(6)])
    agent = await client.agents.create(name="Reminders")
    fake.inject("createOutboundCall", drop_after_processing=1.0, times=1)  # one ambiguous outcome

    first = await launcher.launch_campaign(client, db_path, "spring", agent.id)
    assert first == Counter({"launched": 5, "unknown": 1})
    assert len(fake.dialed()) == 6

    # The process died before the database was updated: every row looks pending again.
    with sqlite3.connect(db_path) as db:
        db.execute("UPDATE leads SET outcome = NULL, call_id = NULL")
    db.close()
    again = await launcher.launch_campaign(client, db_path, "spring", agent.id)

    assert again == Counter({"launched": 5, "unknown": 1})  # from the journal
    assert len(fake.dialed()) == 6  # nobody dialed twice, the unknown lead included
    assert sum(1 for outcome, _ in outcomes(db_path).values() if outcome == "launched") == 5


def test_database_launch_script(tmp_path: Path) -> None:
    db_path = tmp_path / "leads.db"
    make_db(db_path, [("spring", "Jan", "+31612345678", 0), ("spring", "Kees", "0612", 0)])
    with run_in_thread(speed=100, rate_limit=None) as fake:
        env = {"FLIREO_API_KEY": fake.api_key, "FLIREO_BASE_URL": fake.url}
        agent_id = _agent(fake.url, fake.api_key)
        result = run_script("launch_from_database", str(db_path), "spring", agent_id, env=env)
        assert fake.dialed() == ["+31612345678"]
    assert result.returncode == 1, result.stderr  # one lead failed
    assert result.stdout.strip() == "1 failed, 1 launched"


def _agent(base_url: str, api_key: str) -> str:
    async def create() -> str:
        async with AsyncFlireo(api_key=api_key, base_url=base_url, rate_limit=None) as c:
            return (await c.agents.create(name="Reminders")).id

    return asyncio.run(create())


# -- usage export, one file per month --------------------------------------------------------------


def test_months_cover_the_range_across_a_year_end() -> None:
    months = load("export_usage_by_month").months
    assert list(months("2025-11", "2026-02")) == [
        date(2025, 11, 1),
        date(2025, 12, 1),
        date(2026, 1, 1),
        date(2026, 2, 1),
    ]
    assert list(months("2026-03", "2026-03")) == [date(2026, 3, 1)]
    with pytest.raises(ValueError, match="after last month"):
        list(months("2026-04", "2026-03"))


async def test_usage_export_writes_one_file_per_month(
    fake: FakeFlireo, client: AsyncFlireo, tmp_path: Path
) -> None:
    exporter = load("export_usage_by_month")
    # Every 6 hours from 30 January to 8 March (and one log after the exported range).
    logs = fake.seed_usage_logs(
        150, start=datetime(2026, 1, 30, tzinfo=timezone.utc), step=timedelta(hours=6)
    )
    fake.seed_usage_logs(1, start=datetime(2026, 4, 2, tzinfo=timezone.utc))
    expected = Counter(log["created_at"][:7] for log in logs)

    rows = await exporter.export_by_month(client, "2026-01", "2026-03", tmp_path / "usage")

    assert rows == {f"usage-{month}.csv": expected[month] for month in ("2026-01", "2026-02", "2026-03")}
    assert expected["2026-01"] == 8
    assert expected["2026-03"] > 0
    for month in ("2026-01", "2026-02", "2026-03"):
        with open(tmp_path / "usage" / f"usage-{month}.csv", newline="") as f:
            records = list(csv.DictReader(f))
        assert len(records) == expected[month]
        assert {r["created_at"][:7] for r in records} == {month}
        assert sorted(r["id"] for r in records) == sorted(
            log["id"] for log in logs if log["created_at"].startswith(month)
        )


def test_usage_export_script(tmp_path: Path) -> None:
    with run_in_thread(speed=100, rate_limit=None) as fake:
        fake.seed_usage_logs(10, datetime(2026, 2, 27, tzinfo=timezone.utc), step=timedelta(hours=12))
        env = {"FLIREO_API_KEY": fake.api_key, "FLIREO_BASE_URL": fake.url}
        result = run_script("export_usage_by_month", "2026-02", "2026-03", str(tmp_path / "out"), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["usage-2026-02.csv: 4 rows", "usage-2026-03.csv: 6 rows"]
