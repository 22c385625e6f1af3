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
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from flireo_async.testing import FakeFlireo
from tests.test_cli import env, fake, flireo, one_line_error, process_env  # noqa: F401  (fixtures)

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, from PyPI (a dev dependency)
    import tomli as tomllib

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


def test_a_server_that_never_answers(silent_server: str, tmp_path: Path) -> None:
    server_env = {"FLIREO_API_KEY": "k", "FLIREO_BASE_URL": silent_server}
    out = tmp_path / "usage.csv"
    run = flireo("export", "usage", "--out", str(out), "--timeout", "0.2", env=server_env)
    assert run.code == 1
    *notes, last = run.err.strip().splitlines()
    # Every attempt is shown as it fails, with what comes next.
    assert notes == [
        "GET /usage: attempt 1/3: no answer within 0.2 s; trying again (attempt 2/3, waiting up to 0.2 s)",
        "GET /usage: attempt 2/3: no answer within 0.2 s; trying again (attempt 3/3, waiting up to 0.2 s)",
        "GET /usage: attempt 3/3: no answer within 0.2 s",
    ]
    assert last == (
        f"flireo: error: no answer from {silent_server}: GET /api/v1/usage got no response within 0.2 s "
        "on each of 3 attempts; nothing was changed (it only reads); try again later or with a larger --timeout"
    )
    assert "processed" not in run.err  # a read cannot have done anything
    assert not out.exists()


def test_quiet_hides_the_attempts_but_not_the_error(silent_server: str, tmp_path: Path) -> None:
    server_env = {"FLIREO_API_KEY": "k", "FLIREO_BASE_URL": silent_server}
    run = flireo(
        "export", "usage", "--out", str(tmp_path / "u.csv"), "--timeout", "0.2", "-q", env=server_env
    )
    assert run.code == 1
    one_line_error(run, "on each of 3 attempts")


def test_a_write_without_answer_is_worded_as_unknown() -> None:
    from flireo_async import APITimeoutError
    from flireo_async.cli._common import Progress, RetryNotes
    from flireo_async.cli._main import _connection_failure

    notes = RetryNotes(Progress(quiet=True), timeout=5, max_retries=2, show=False)
    url = "http://127.0.0.1:9/api/v1/calls/outbound"
    post = _connection_failure(
        APITimeoutError("t", method="POST", url=url), "http://127.0.0.1:9/api/v1", notes
    )
    assert post == (
        "no answer from http://127.0.0.1:9/api/v1: POST /api/v1/calls/outbound got no response within 5 s "
        "(1 attempt); the POST may or may not have been carried out: check before repeating it"
    )
    get = _connection_failure(APITimeoutError("t", method="GET", url=url), "http://127.0.0.1:9/api/v1", notes)
    assert "nothing was changed" in get


# -- error messages ------------------------------------------------------------------------------

_PROXY_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title><style>body{color:red}</style></head>"
    b"<body><h1>502 Bad Gateway</h1><p>The upstream server is down.</p><hr>nginx/1.27</body></html>"
)


@pytest.fixture
def proxy_error_server() -> Iterator[str]:
    """A reverse proxy whose upstream is down: every request gets its HTML 502 page."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(502)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(_PROXY_PAGE)))
            self.end_headers()
            self.wfile.write(_PROXY_PAGE)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_an_html_error_page_is_its_title(
    proxy_error_server: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server_env = {"FLIREO_API_KEY": "k", "FLIREO_BASE_URL": proxy_error_server}
    with caplog.at_level("DEBUG", logger="flireo_async"):
        run = flireo("export", "usage", "--out", str(tmp_path / "u.csv"), env=server_env)
    assert run.code == 1
    *notes, last = run.err.strip().splitlines()
    assert len(notes) == 2
    assert all("the API answered 502; trying again in" in note for note in notes)
    assert last == "flireo: error: the API answered 502 Bad Gateway"
    assert "<" not in run.err
    # The whole page is still there for whoever turns on debug logging.
    assert any("The upstream server is down." in record.getMessage() for record in caplog.records)


def test_status_errors_say_each_thing_once() -> None:
    import json

    from flireo_async._transport import build_status_error

    def message(status: int, body: object) -> str:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return str(build_status_error(status, {}, raw))

    # The API puts one problem in both "message" and "details".
    same = {
        "error": "Validation failed",
        "message": "destination must be E.164",
        "details": ["destination must be E.164"],
    }
    assert message(400, same) == "400 Validation failed: destination must be E.164"
    more = {"error": "Validation failed", "message": "2 problems", "details": ["a is wrong", "b is wrong"]}
    assert message(400, more) == "400 Validation failed: 2 problems (a is wrong; b is wrong)"
    assert message(400, {"error": "Validation failed", "details": ["x"]}) == "400 Validation failed (x)"
    assert message(503, b"<html><head><title>503 Service Temporarily Unavailable</title></head></html>") == (
        "503 Service Temporarily Unavailable"
    )
    assert message(500, b"<html><body><h1>Oops</h1></body></html>") == "500 Oops"
    long_page = b"<html><body><style>p{}</style>" + b"<p>lorem ipsum</p>" * 20 + b"</body></html>"
    assert message(500, long_page) == "500 Internal Server Error"
    assert message(500, b"upstream exploded") == "500 upstream exploded"


# -- pacing and ETA ------------------------------------------------------------------------------


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_pace_says_when_the_rate_limit_sets_the_speed() -> None:
    from flireo_async.cli._common import Pace

    clock = Ticks()
    wall = datetime(2026, 1, 7, 12, 0)
    pace = Pace(100, clock=clock, now=lambda: wall + timedelta(seconds=clock.now))
    assert pace.info(0, 500) == ""  # nothing measured yet
    clock.now = 30.0
    # 50 requests in 30 s is the limit of 100 a minute: the other 150 take 90 s.
    assert pace.info(50, 150) == "paced at 100/min · ETA 12:02 (2 min left)"
    assert pace.info(50, 0) == "paced at 100/min"
    slow = Pace(100, clock=clock, now=lambda: wall)
    clock.now = 90.0
    # 6 requests in 60 s: the API's speed, not the limit; 600 more at that speed take 100 minutes.
    assert slow.info(6, 600) == "ETA 13:40 (1 h 40 min left)"
    unlimited = Pace(None, clock=clock, now=lambda: wall)
    clock.now = 150.0
    assert unlimited.info(100, 100) == "ETA 12:01 (60 s left)"


def test_export_and_launch_take_timeout_and_rate_limit() -> None:
    for command in (("export", "usage"), ("calls", "launch"), ("usage", "report")):
        run = flireo(*command, "--help")
        assert run.code == 0
        assert "--timeout SECONDS" in run.out
        assert "--rate-limit N" in run.out


# -- make demo -----------------------------------------------------------------------------------


def test_make_demo_installs_only_what_the_demo_needs() -> None:
    """``make demo`` has its own venv with the package and its cli extra, made once (a stamp)
    and announced; the dev tools (mypy, schemathesis, the generator) stay out of it."""
    makefile = (Path(__file__).parent.parent / "Makefile").read_text()
    rules: dict[str, tuple[list[str], list[str]]] = {}
    for block in makefile.split("\n\n"):
        lines = block.strip().splitlines()
        head = next((line for line in lines if ":" in line and not line.startswith(("\t", "#"))), None)
        if head is not None:
            target, _, prerequisites = head.partition(":")
            rules[target.strip()] = (
                prerequisites.split(),
                [line.strip() for line in lines if line.startswith("\t")],
            )
    needs, recipe = rules["demo"]
    assert needs == ["$(DEMO_STAMP)"]
    assert recipe == ["$(DEMO_VENV)/bin/flireo demo"]
    stamp_needs, install = rules["$(DEMO_STAMP)"]
    assert "pyproject.toml" in stamp_needs
    assert any(line.startswith("@echo") and "installing" in line for line in install)
    pip = [line for line in install if "pip install" in line]
    assert len(pip) == 1
    assert "'.[cli]'" in pip[0]
    assert "dev" not in pip[0]
    assert install[-1] == "touch $(DEMO_STAMP)"
    assert "DEMO_VENV := .venv-demo" in makefile


def test_a_429_is_shown_and_waited_out(fake: FakeFlireo, env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    fake.seed_usage_logs(5, start=START)
    fake.inject("getUsage", status_429=1.0, retry_after=0, times=1)
    run = flireo("export", "usage", "--out", str(tmp_path / "u.csv"), env=env)
    assert run.code == 0, run.err
    assert (
        run.err.strip()
        == "GET /usage: attempt 1/3: the API answered 429; trying again when the rate limit allows"
    )
    assert "wrote 5 usage logs" in run.out
