"""The ``flireo`` command where users trip: a base install, closed pipes, bad filters, slow or
broken servers, file modes, pacing and ETAs."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from flireo_async.testing import FakeFlireo
from tests.test_cli import env, fake, flireo, one_line_error, process_env  # noqa: F401  (fixtures)

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


# -- a base install: no jsonschema ---------------------------------------------------------------


@pytest.fixture
def without_jsonschema(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import jsonschema`` fail as it does when the package is not installed, and forget
    the fake server's modules so that they are imported (and fail) again."""
    monkeypatch.setitem(sys.modules, "jsonschema", None)
    for name in list(sys.modules):
        if name.startswith("flireo_async.testing._"):
            monkeypatch.delitem(sys.modules, name)


@pytest.mark.usefixtures("without_jsonschema")
@pytest.mark.parametrize("command", [("demo", "--calls", "2"), ("mock", "--port", "0")])
def test_fake_server_commands_name_the_extra_on_a_base_install(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    run = flireo(*command)
    assert run.code == 2
    one_line_error(run, "jsonschema")
    assert "pip install 'flireo-async[cli]'" in run.err
    assert not run.out


def test_the_cli_extra_provides_what_the_fake_server_needs() -> None:
    """The extra the message names really holds jsonschema (and rich for the progress bars)."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
    cli = " ".join(project["optional-dependencies"]["cli"])
    assert "jsonschema" in cli
    assert "rich" in cli
    assert not any(dep.startswith("jsonschema") for dep in project["dependencies"])


# -- stdout closed early -------------------------------------------------------------------------


def test_export_to_a_pipe_closed_early_ends_quietly(fake: FakeFlireo, env: dict[str, str]) -> None:  # noqa: F811
    # Far more than a pipe buffer holds, so the writer is still busy when the reader leaves.
    fake.seed_usage_logs(5000, start=START)
    process = subprocess.Popen(
        [sys.executable, "-m", "flireo_async.cli", "export", "usage", "--out", "-"],
        env=process_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        header = process.stdout.readline()
        process.stdout.readline()
        process.stdout.close()  # what `| head -2` does once it has its lines
        assert process.stderr is not None
        err = process.stderr.read().decode()
        process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert header.startswith(b"id,")
    assert err == ""
    assert process.returncode == 141


# -- bad filters are errors, not empty files -----------------------------------------------------


def test_start_after_end_is_an_error(fake: FakeFlireo, env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "x.csv"
    for what in ("usage", "calls"):
        run = flireo(
            "export",
            what,
            "--start-date",
            "2026-02-01",
            "--end-date",
            "2026-01-01",
            "--out",
            str(out),
            env=env,
        )
        assert run.code == 2
        one_line_error(run, "--start-date 2026-02-01 is after --end-date 2026-01-01")
    leads = flireo(
        "export", "leads", "--campaign", "c", "--start-date", "2026-02-01", "--end-date", "2026-01-01",
        "--out", str(out), env=env,
    )  # fmt: skip
    assert leads.code == 2
    one_line_error(leads, "is after --end-date")
    same_day = flireo(
        "export",
        "usage",
        "--start-date",
        "2026-01-01",
        "--end-date",
        "2026-01-01",
        "--out",
        str(out),
        env=env,
    )
    assert same_day.code == 0, same_day.err
    assert fake.requests  # only the valid period reached the server
    assert all("2026-02-01" not in str(r.query) for r in fake.requests)


def test_unknown_status_is_an_error(fake: FakeFlireo, env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "x.csv"
    run = flireo("export", "calls", "--status", "bogus", "--out", str(out), env=env)
    assert run.code == 2
    one_line_error(run, "--status 'bogus' is not a call status")
    assert "ended-with-error" in run.err
    assert not out.exists()
    assert fake.requests == []
    good = flireo("export", "calls", "--status", "ended", "--out", str(out), env=env)
    assert good.code == 0, good.err


def test_unknown_output_suffix_is_an_error(fake: FakeFlireo, env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "x.xlsx"
    run = flireo("export", "calls", "--out", str(out), env=env)
    assert run.code == 2
    one_line_error(run, "cannot write .xlsx files")
    assert not out.exists()
    explicit = flireo("export", "calls", "--out", str(out), "--format", "csv", env=env)
    assert explicit.code == 0  # said so: CSV under that name
    assert out.read_text().startswith("id,")
    jsonl = flireo("export", "calls", "--out", str(tmp_path / "x.ndjson"), env=env)
    assert "(jsonl)" in jsonl.out


def test_invalid_date_names_the_flag(env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    run = flireo("export", "usage", "--end-date", "2026-02-30", "--out", str(tmp_path / "x.csv"), env=env)
    assert run.code == 2
    one_line_error(run, "--end-date: invalid date '2026-02-30'")


# -- exported files get the usual permissions ----------------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_exported_file_mode_follows_the_umask(
    fake: FakeFlireo,  # noqa: F811
    env: dict[str, str],  # noqa: F811
    tmp_path: Path,
    mask: int,
) -> None:
    fake.seed_usage_logs(3, start=START)
    out = tmp_path / "usage.csv"
    old = os.umask(mask)
    try:
        run = flireo("export", "usage", "--out", str(out), env=env)
    finally:
        os.umask(old)
    assert run.code == 0, run.err
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask


def test_export_over_an_existing_file_keeps_its_mode(
    fake: FakeFlireo,  # noqa: F811
    env: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    out = tmp_path / "usage.csv"
    out.write_text("old")
    out.chmod(0o640)
    run = flireo("export", "usage", "--out", str(out), env=env)
    assert run.code == 0, run.err
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert out.read_text().startswith("id,")


# -- a server that never answers -----------------------------------------------------------------


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts connections, reads the request and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/api/v1"
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()
