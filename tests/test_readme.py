"""The README's runnable examples run as written (against the fake server)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from flireo_async.testing import run_in_thread

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def block_after(heading: str) -> str:
    """The first python code block after ``heading``."""
    section = README[README.index(heading) :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def run(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_quickstart_runs_against_the_fake_server() -> None:
    code = block_after("## Quickstart")
    with run_in_thread(speed=100, rate_limit=None) as fake:
        result = run(code, {"FLIREO_API_KEY": fake.api_key, "FLIREO_BASE_URL": fake.url})
        assert result.returncode == 0, result.stderr
        assert fake.dialed() == ["+31612345678"]
    lines = result.stdout.splitlines()
    assert lines[0].endswith(" dialing")
    assert lines[-1].startswith("404 ")


def test_fake_server_example_runs() -> None:
    result = run(block_after("## Testing your code with FakeFlireo"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "1 usage log(s)"


def test_async_only_example_runs_from_synchronous_code() -> None:
    code = block_after("## Async only")
    with run_in_thread(speed=100, rate_limit=None) as fake:
        result = run(code, {"FLIREO_API_KEY": fake.api_key, "FLIREO_BASE_URL": fake.url})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"  # a fresh fake server has no agents
