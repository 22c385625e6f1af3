"""The ``flireo`` command: exit codes, outputs, one-line errors, the demo.

Commands run in this process through ``main(argv)`` (with the fake server in a thread);
only what must be a real process — Ctrl-C and a server that runs until stopped — starts one,
and kills it in a ``finally``.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import attrs
import pytest

from flireo_async import AsyncFlireo
from flireo_async.cli import main
from flireo_async.testing import FakeFlireo, run_in_thread


@attrs.frozen
class Run:
    code: int
    out: str
    err: str


def flireo(*args: str, env: dict[str, str] | None = None) -> Run:
    """Run ``flireo ARGS`` in this process with only ``env`` as its FLIREO_* variables."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("FLIREO_")}
    out, err = io.StringIO(), io.StringIO()
    for name in saved:
        del os.environ[name]
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's own usage errors and --help
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        for name in [k for k in os.environ if k.startswith("FLIREO_")]:
            del os.environ[name]
        os.environ.update(saved)
    return Run(code, out.getvalue(), err.getvalue())


def one_line_error(run: Run, text: str) -> None:
    assert "Traceback" not in run.err
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err
    assert lines[0].startswith("flireo: error: "), run.err
    assert text in lines[0], lines[0]


@pytest.fixture
def fake() -> Iterator[FakeFlireo]:
    with run_in_thread(rate_limit=None, speed=100, seed=2) as server:
        yield server


@pytest.fixture
def env(fake: FakeFlireo) -> dict[str, str]:
    return {"FLIREO_API_KEY": fake.api_key, "FLIREO_BASE_URL": fake.url}


@pytest.fixture
def agent_id(fake: FakeFlireo) -> str:
    async def create() -> str:
        async with AsyncFlireo(api_key=fake.api_key, base_url=fake.url, rate_limit=None) as client:
            return (await client.agents.create(name="CLI agent")).id

    return asyncio.run(create())


def process_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("FLIREO_")} | env


def write_leads(path: Path, phones: list[str], header: tuple[str, ...] = ("name", "phone")) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for i, number in enumerate(phones):
            writer.writerow([f"Lead {i}", number][: len(header)] if len(header) > 1 else [number])
    return path


def phones(n: int) -> list[str]:
    return [f"+3162{i:07d}" for i in range(n)]


# -- help and usage ------------------------------------------------------------------------------


def test_help_reads_well() -> None:
    run = flireo("--help")
    assert run.code == 0
    for text in ("export", "calls", "mock", "demo", "FLIREO_API_KEY", "exit codes"):
        assert text in run.out
    launch = flireo("calls", "launch", "--help")
    assert launch.code == 0
    for text in ("E.164", "--journal", "phone_number", "unknown", "examples:"):
        assert text in launch.out


def test_usage_errors_exit_2() -> None:
    assert (flireo()).code == 2
    assert (flireo("calls")).code == 2
    missing = flireo("calls", "launch", "leads.csv")
    assert missing.code == 2
    assert "--agent-id" in missing.err


def test_missing_key_exits_2(tmp_path: Path) -> None:
    leads = write_leads(tmp_path / "leads.csv", phones(2))
    run = flireo("calls", "launch", str(leads), "--agent-id", "a")
    assert run.code == 2
    one_line_error(run, "no API key")


# -- calls launch --------------------------------------------------------------------------------


def test_launch_all_ok(fake: FakeFlireo, env: dict[str, str], agent_id: str, tmp_path: Path) -> None:
    numbers = phones(30)
    leads = write_leads(tmp_path / "leads.csv", numbers)
    run = flireo("calls", "launch", str(leads), "--agent-id", agent_id, "--rate-limit", "6000", env=env)
    assert run.code == 0, run.err
    assert "launched: 30" in run.out
    assert "failed:   0" in run.out
    assert "unknown:  0" in run.out
    assert sorted(fake.dialed()) == numbers


def test_launch_reports_failed_and_unknown_and_exits_1(
    fake: FakeFlireo, env: dict[str, str], agent_id: str, tmp_path: Path
) -> None:
    fake.inject("createOutboundCall", drop_after_processing=1.0, times=2)
    leads = write_leads(tmp_path / "leads.csv", phones(10), header=("phone_number",))
    journal = tmp_path / "j.journal"
    args = (
        "calls",
        "launch",
        str(leads),
        "--agent-id",
        agent_id,
        "--journal",
        str(journal),
        "--rate-limit",
        "6000",
    )
    run = flireo(*args, env=env)
    assert run.code == 1
    assert "launched: 8" in run.out
    assert "unknown:  2" in run.out
    # The two unknown leads are named with their line, and marked as not retried.
    unknown_lines = [line for line in run.err.splitlines() if ": unknown: " in line]
    assert len(unknown_lines) == 2
    assert all(line.startswith("leads.csv:") for line in unknown_lines)
    assert all("not retried" in line for line in unknown_lines)

    again = flireo(*args, env=env)
    assert again.code == 1  # the unknowns stay unknown: never dialed again
    assert "recorded earlier: 10" in again.out
    assert len(fake.dialed()) == 10 == len(set(fake.dialed()))


def test_launch_resumes_after_interrupt(
    fake: FakeFlireo, env: dict[str, str], agent_id: str, tmp_path: Path
) -> None:
    fake.inject("createOutboundCall", latency=0.05)
    numbers = phones(200)
    leads = write_leads(tmp_path / "leads.csv", numbers)
    journal = tmp_path / "j.journal"
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "flireo_async.cli", "calls", "launch", str(leads)),
            *(
                "--agent-id",
                agent_id,
                "--journal",
                str(journal),
                "--max-in-flight",
                "4",
                "--rate-limit",
                "6000",
            ),
        ],
        env=process_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(fake.dialed()) < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    assert process.returncode == 130, err
    assert "Interrupted launch" in out
    assert "--journal" in err
    assert "Traceback" not in err
    assert len(fake.dialed()) < 200

    run = flireo(
        "calls",
        "launch",
        str(leads),
        "--agent-id",
        agent_id,
        "--journal",
        str(journal),
        "--rate-limit",
        "6000",
        env=env,
    )
    assert run.code in (0, 1)  # 1 only if a request was in flight at the interrupt (unknown)
    assert len(fake.dialed()) == len(set(fake.dialed()))
    summary = dict(line.strip().split(":", 1) for line in run.out.splitlines()[1:] if ":" in line)
    assert summary["total"].strip() == "200 of 200"
    dialed = set(fake.dialed())
    assert int(summary["launched"]) + int(summary["unknown"]) >= len(dialed)


def test_csv_without_phone_column(fake: FakeFlireo, env: dict[str, str], tmp_path: Path) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text("name,email\nJan,jan@example.com\n")
    run = flireo("calls", "launch", str(leads), "--agent-id", "a", env=env)
    assert run.code == 2
    one_line_error(run, "no phone column")
    assert fake.requests == []


def test_malformed_number_names_its_line(
    fake: FakeFlireo, env: dict[str, str], agent_id: str, tmp_path: Path
) -> None:
    numbers = phones(5)
    numbers[3] = "0612345678"  # line 5: header is line 1
    leads = write_leads(tmp_path / "leads.csv", numbers, header=("Phone Number",))
    run = flireo("calls", "launch", str(leads), "--agent-id", agent_id, env=env)
    assert run.code == 2
    one_line_error(run, "leads.csv:5: '0612345678' is not an E.164 phone number")
    assert fake.dialed() == []  # the whole file is checked before anyone is dialed


def test_wrong_key_exits_2(fake: FakeFlireo, tmp_path: Path) -> None:
    leads = write_leads(tmp_path / "leads.csv", phones(3))
    run = flireo(
        "calls", "launch", str(leads), "--agent-id", "a", "--api-key", "wrong", "--base-url", fake.url
    )
    assert run.code == 2
    one_line_error(run, "rejected (401")
    assert fake.dialed() == []


def test_unknown_agent_exits_2(fake: FakeFlireo, env: dict[str, str], tmp_path: Path) -> None:
    leads = write_leads(tmp_path / "leads.csv", phones(3))
    run = flireo("calls", "launch", str(leads), "--agent-id", "nope", env=env)
    assert run.code == 2
    one_line_error(run, "agent 'nope' not found")


def test_unreachable_server_exits_1(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    leads = write_leads(tmp_path / "leads.csv", phones(3))
    env = {"FLIREO_API_KEY": "k", "FLIREO_BASE_URL": f"http://127.0.0.1:{port}/api/v1"}
    run = flireo("calls", "launch", str(leads), "--agent-id", "a", env=env)
    assert run.code == 1
    # Each failed attempt is shown as it happens, then the error in one line.
    *notes, last = run.err.strip().splitlines()
    assert [note.split(": ", 2)[1] for note in notes] == ["attempt 1/3", "attempt 2/3", "attempt 3/3"]
    one_line_error(
        Run(run.code, run.out, last),
        f"cannot reach http://127.0.0.1:{port}/api/v1 (3 attempts): connection refused",
    )
    assert "Errno" not in last


def test_missing_leads_file(env: dict[str, str], tmp_path: Path) -> None:
    run = flireo("calls", "launch", str(tmp_path / "nope.csv"), "--agent-id", "a", env=env)
    assert run.code == 2
    one_line_error(run, "cannot read")


# -- export --------------------------------------------------------------------------------------


def test_export_usage_csv_and_calls_jsonl(fake: FakeFlireo, env: dict[str, str], tmp_path: Path) -> None:
    fake.seed_usage_logs(1500, start=datetime(2026, 1, 1, tzinfo=timezone.utc))
    fake.seed_calls(40, start=datetime(2026, 1, 1, tzinfo=timezone.utc))
    out = tmp_path / "usage.csv"
    run = flireo("export", "usage", "--out", str(out), "--start-date", "2026-01-01", env=env)
    assert run.code == 0, run.err
    assert f"wrote 1500 usage logs to {out} (csv)" in run.out
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["id"] for r in rows} == {log["id"] for log in fake.state.usage_logs}

    calls = tmp_path / "calls.jsonl"
    run = flireo("export", "calls", "--out", str(calls), env=env)
    assert run.code == 0
    assert "(jsonl)" in run.out
    assert len([json.loads(line) for line in calls.read_text().splitlines()]) == 40

    stdout = flireo("export", "calls", "--out", "-", "--format", "jsonl", env=env)
    assert stdout.code == 0
    assert len(stdout.out.splitlines()) == 40
    assert "wrote 40 calls" in stdout.err


def test_export_errors(fake: FakeFlireo, env: dict[str, str], tmp_path: Path) -> None:
    out = str(tmp_path / "x.csv")
    no_campaign = flireo("export", "leads", "--out", out, env=env)
    assert no_campaign.code == 2
    one_line_error(no_campaign, "--campaign")
    unknown = flireo("export", "leads", "--campaign", "nope", "--out", out, env=env)
    assert unknown.code == 2
    one_line_error(unknown, "campaign 'nope' not found")
    bad_date = flireo("export", "usage", "--start-date", "last week", "--out", out, env=env)
    assert bad_date.code == 2
    one_line_error(bad_date, "invalid date 'last week'")
    no_dir = flireo("export", "usage", "--out", str(tmp_path / "missing" / "x.csv"), env=env)
    assert no_dir.code == 2
    one_line_error(no_dir, "does not exist")
    wrong_key = flireo("export", "usage", "--out", out, "--api-key", "bad", "--base-url", fake.url)
    assert wrong_key.code == 2
    one_line_error(wrong_key, "401")
    assert not os.path.exists(out)


# -- mock and demo -------------------------------------------------------------------------------


def test_mock_serves_until_ctrl_c() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flireo_async.cli",
            "mock",
            "--port",
            "0",
            "--speed",
            "10",
            "--rate-limit",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        url = first.split(" on ", 1)[1].split()[0]
        key_line = ""
        while "FLIREO_API_KEY" not in key_line:
            key_line = process.stdout.readline()
        key = key_line.strip().split("=", 1)[1]

        async def use() -> str:
            async with AsyncFlireo(api_key=key, base_url=url, strict_responses=True) as client:
                agent = await client.agents.create(name="Against the mock")
                return str((await client.agents.get(agent.id)).name)

        assert asyncio.run(use()) == "Against the mock"
        process.send_signal(signal.SIGINT)
        process.wait(20)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    assert process.returncode == 0


def test_demo_end_to_end(tmp_path: Path) -> None:
    run = flireo("demo", "--out", str(tmp_path), "--calls", "40")
    assert run.code == 0, run.err
    assert "launched:    40" in run.out
    assert "failed:      0" in run.out
    assert "unknown:     0" in run.out
    with (tmp_path / "usage.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert 20 < len(rows) <= 40  # calls that were answered (the fake fails 10 % of them)
    assert (tmp_path / "leads.csv").read_text().count("\n") == 41
    report = (tmp_path / "usage-report.html").read_text(encoding="utf-8")
    assert f"{len(rows)} calls" in run.out
    assert f'<div class="value">{len(rows)}</div>' in report
