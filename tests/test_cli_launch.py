"""``flireo calls launch`` in-process (``main(argv)``): leads files, repeats, results, Redis errors."""

from __future__ import annotations

import collections
import csv
from collections.abc import Iterator
from pathlib import Path

import pytest

from flireo_async import AsyncFlireo
from flireo_async.cli import main
from flireo_async.testing import FakeFlireo, run_in_thread

from .conftest import free_port


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeFlireo]:
    with run_in_thread(rate_limit=None, speed=1000, seed=4) as server:
        yield server


@pytest.fixture(scope="module")
def agent(fake: FakeFlireo) -> str:
    import asyncio

    async def create() -> str:
        async with AsyncFlireo(api_key=fake.api_key, base_url=fake.url, rate_limit=None) as client:
            return (await client.agents.create(name="CLI launch agent")).id

    return asyncio.run(create())


@pytest.fixture
def env(fake: FakeFlireo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLIREO_API_KEY", fake.api_key)
    monkeypatch.setenv("FLIREO_BASE_URL", fake.url)


def sent(fake: FakeFlireo) -> collections.Counter[str]:
    return collections.Counter(
        str(r.body.get("destination"))
        for r in fake.requests_for("createOutboundCall")
        if isinstance(r.body, dict)
    )


def launch(*args: str) -> int:
    return main(["calls", "launch", *args, "--rate-limit", "60000", "--quiet"])


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def phone(i: int) -> str:
    return f"+3168{i:07d}"


def test_semicolon_file_with_repeats_and_a_key_column(
    fake: FakeFlireo, agent: str, env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text(
        "naam;telefoon nummer;key\n"  # not a phone column name: rejected below
        f"Jan;{phone(1)};A\n",
        encoding="utf-8",
    )
    assert launch(str(leads), "--agent-id", agent) == 2
    assert "no phone column" in capsys.readouterr().err

    leads.write_text(
        "naam;Phone;key\n"
        f"Jan;{phone(1)};A\n"
        f"Piet;{phone(2)};B\n"
        f"Jan again;{phone(1)} ;A\n"  # the same key: the same lead
        f"Klaas; +31 68 000 0003 ;C\n"
        f"Jan's wife;{phone(1)};D\n",  # another key for the same number: a deliberate second call
        encoding="utf-8",
    )
    assert launch(str(leads), "--agent-id", agent) == 0
    captured = capsys.readouterr()
    assert "lines 2, 4 are the same lead; only line 2 is dialed" in captured.err
    assert sent(fake)[phone(1)] == 2
    assert sent(fake)["+31680000003"] == 1
    results = {r["line"]: r for r in rows(tmp_path / "leads.results.csv")}
    assert results["4"]["outcome"] == "duplicate"
    assert results["4"]["error"] == "duplicate of line 2"
    assert results["2"]["identity"] == "key:A"
    assert (tmp_path / "leads.journal").exists()
    assert "recording to journal" in captured.err


def test_every_bad_row_is_reported_in_one_run(
    fake: FakeFlireo, agent: str, env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sum(sent(fake).values())
    leads = tmp_path / "bad.csv"
    leads.write_text(f"phone\n{phone(10)}\n0612345678\n\n+31 6\n{phone(11)}\nabc\n", encoding="utf-8")
    assert launch(str(leads), "--agent-id", agent) == 2
    err = capsys.readouterr().err
    assert "bad.csv: 3 bad rows; nothing was dialed" in err
    for line in ("bad.csv:3:", "bad.csv:5:", "bad.csv:7:"):
        assert line in err
    assert "Traceback" not in err
    assert sum(sent(fake).values()) == before


def test_results_list_every_unknown_lead(
    fake: FakeFlireo, agent: str, env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.inject("createOutboundCall", drop_after_processing=1.0, times=30)
    try:
        leads = tmp_path / "many.csv"
        leads.write_text("phone\n" + "".join(f"{phone(100 + i)}\n" for i in range(40)), encoding="utf-8")
        results = tmp_path / "out.csv"
        assert launch(str(leads), "--agent-id", agent, "--results", str(results)) == 1
    finally:
        fake.clear_faults()
    err = capsys.readouterr().err
    assert "... and 10 more unknown leads: all are listed in" in err
    assert "may have been dialed (unknown)" in err
    table = rows(results)
    assert len(table) == 40
    assert collections.Counter(r["outcome"] for r in table) == {"unknown": 30, "launched": 10}
    assert all(r["destination"] and r["identity"] for r in table)
    # A rerun dials nobody again: the unknowns stay unknown.
    assert launch(str(leads), "--agent-id", agent, "--results", str(results)) == 1
    assert all(r["resumed"] == "yes" for r in rows(results))
    assert max(sent(fake).values()) <= 2  # phone(1) twice on purpose above; nobody here twice
    assert all(sent(fake)[phone(100 + i)] == 1 for i in range(40))


def test_no_journal_and_option_errors(
    agent: str, env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    leads = tmp_path / "one.csv"
    leads.write_text(f"phone\n{phone(200)}\n", encoding="utf-8")
    assert launch(str(leads), "--agent-id", agent, "--no-journal") == 0
    assert not (tmp_path / "one.journal").exists()
    assert "no journal: a rerun cannot tell who was dialed" in capsys.readouterr().err
    for args, message in [
        (("--redis", "redis://127.0.0.1:1/0"), "--redis needs --launch"),
        (("--launch", "x"), "--launch goes with --redis"),
        (("--journal", "j", "--no-journal"), "not both"),
        (
            ("--redis", "redis://127.0.0.1:1/0", "--launch", "x", "--journal", "j"),
            "do not apply with --redis",
        ),
        (("--redis", "http://x", "--launch", "x"), "not a Redis URL"),
        (("--redis", "redis://127.0.0.1:1/0", "--launch", "bad name"), "invalid launch name"),
    ]:
        assert launch(str(leads), "--agent-id", agent, *args) == 2
        err = capsys.readouterr().err
        assert message in err, err
        assert len(err.strip().splitlines()) == 1


def test_unreachable_redis_is_one_line_and_dials_nobody(
    fake: FakeFlireo, agent: str, env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sum(sent(fake).values())
    leads = tmp_path / "r.csv"
    leads.write_text(f"phone\n{phone(300)}\n", encoding="utf-8")
    url = f"redis://:pw-secret@127.0.0.1:{free_port()}/0"
    assert launch(str(leads), "--agent-id", agent, "--redis", url, "--launch", "spring") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("flireo: error: cannot reach redis://:***@127.0.0.1")
    assert "nobody was dialed" in err
    assert "pw-secret" not in err
    assert sum(sent(fake).values()) == before


def test_launch_with_redis_and_status(
    fake: FakeFlireo,
    agent: str,
    env: None,
    redis_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    leads = tmp_path / "fleet.csv"
    leads.write_text("phone\n" + "".join(f"{phone(400 + i)}\n" for i in range(12)), encoding="utf-8")
    assert launch(str(leads), "--agent-id", agent, "--redis", redis_url, "--launch", "cli") == 0
    capsys.readouterr()
    assert main(["calls", "launch-status", "--redis", redis_url, "--launch", "cli"]) == 0
    out = capsys.readouterr().out
    assert "launched:" in out
    assert "12 of 12" in out
    assert main(["calls", "launch-status", "--redis", redis_url, "--launch", "nope"]) == 2
    assert "no launch 'nope'" in capsys.readouterr().err


def test_a_key_with_a_trailing_carriage_return_is_refused_before_anything(
    fake: FakeFlireo,
    agent: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A key read from a CRLF .env file: one clear line, nothing sent, nothing recorded."""
    before = len(fake.requests)
    monkeypatch.setenv("FLIREO_API_KEY", fake.api_key + "\r")
    monkeypatch.setenv("FLIREO_BASE_URL", fake.url)
    leads = tmp_path / "crlf.csv"
    leads.write_text(f"phone\n{phone(500)}\n", encoding="utf-8")
    assert launch(str(leads), "--agent-id", agent) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("flireo: error: api_key contains whitespace")
    assert len(err.splitlines()) == 1
    assert fake.api_key not in err
    assert len(fake.requests) == before
    assert not (tmp_path / "crlf.journal").exists()
    # Fixed key, same command: the lead is dialed (nothing was recorded as unknown).
    monkeypatch.setenv("FLIREO_API_KEY", fake.api_key)
    assert launch(str(leads), "--agent-id", agent) == 0
    assert sent(fake)[phone(500)] == 1
