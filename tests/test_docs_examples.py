"""Every ```python block of README.md and docs/ runs as written, against FakeFlireo.

Four kinds of block, told apart by what they are and by an HTML comment on the line before:

- a snippet that uses ``await`` at the top level runs with ``client`` (an ``AsyncFlireo`` bound to
  a fake server) in scope, as in ``python -m asyncio``; the pages say so;
- a program runs in a subprocess with ``FLIREO_API_KEY`` / ``FLIREO_BASE_URL`` set to a fake;
- ``<!-- pytest -->``: a test module, run by pytest with the nearest ```toml block above it as
  pyproject.toml;
- ``<!-- no-run: why -->``: needs something the suite cannot offer (a Redis host, a server that
  runs until stopped); it is compiled only.

``--8<-- "path"`` lines (included files) are expanded first.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import subprocess
import sys
import types
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from flireo_async import AsyncFlireo, BadRequestError
from flireo_async.testing import FakeFlireo, run_in_thread

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
MARKER = re.compile(r"<!--\s*(no-run|pytest)\b[^>]*-->\s*$")
INCLUDE = re.compile(r'^-{1,3}8<-{1,3}\s+"([^"]+)"\s*$', re.M)


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    code: str
    marker: str | None
    config: str | None
    """The nearest ```toml block above, for pytest blocks."""

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    def compiled(self) -> types.CodeType:
        code: types.CodeType = compile(self.code, self.id, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        return code

    @property
    def kind(self) -> str:
        if self.marker is not None:
            return self.marker
        code = self.compiled()
        assert isinstance(code, type(compile("", "", "exec")))
        return "snippet" if code.co_flags & inspect.CO_COROUTINE else "program"


def expand(code: str) -> str:
    return INCLUDE.sub(lambda m: (ROOT / m.group(1)).read_text(), code)


def blocks() -> list[Block]:
    found = []
    for page in PAGES:
        text = page.read_text()
        config = None
        for match in FENCE.finditer(text):
            language, body = match.group(1), match.group(2)
            if language == "toml":
                config = body
            if language != "python":
                continue
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            marker = MARKER.search(before)
            line = text.count("\n", 0, match.start()) + 1
            found.append(Block(page, line, expand(body), marker.group(1) if marker else None, config))
    return found


BLOCKS = blocks()


def of_kind(kind: str) -> list[object]:
    return [pytest.param(b, id=b.id) for b in BLOCKS if b.kind == kind]


def test_the_pages_have_blocks_of_every_kind() -> None:
    kinds = {b.kind for b in BLOCKS}
    assert kinds == {"snippet", "program", "pytest", "no-run"}
    assert sum(b.page.name == "README.md" for b in BLOCKS) >= 5


@pytest.mark.parametrize("block", of_kind("no-run"))
def test_no_run_blocks_compile(block: Block) -> None:
    assert block.compiled() is not None


@pytest.fixture
async def fake() -> AsyncIterator[FakeFlireo]:
    async with FakeFlireo(speed=50, rate_limit=None) as server:
        yield server


@pytest.mark.parametrize("block", of_kind("snippet"))
async def test_snippets_run(
    block: Block, fake: FakeFlireo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # snippets write journals and exports into the working directory
    async with AsyncFlireo(api_key=fake.api_key, base_url=fake.url, rate_limit=None) as client:
        namespace = {"__name__": "__snippet__", "client": client}
        result = eval(block.compiled(), namespace)  # the flag makes a top-level-await block a coroutine
        assert inspect.iscoroutine(result)
        await result
    assert not fake.response_problems


@pytest.mark.parametrize("block", of_kind("program"))
def test_programs_run(block: Block, tmp_path: Path) -> None:
    with run_in_thread(speed=100, rate_limit=None) as fake:
        result = subprocess.run(
            [sys.executable, "-c", block.code],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env={**os.environ, "FLIREO_API_KEY": fake.api_key, "FLIREO_BASE_URL": fake.url},
            check=False,
        )
    assert result.returncode == 0, result.stderr


def run_pytest(block: Block, folder: Path, config: str | None) -> subprocess.CompletedProcess[str]:
    folder.mkdir()
    (folder / "pyproject.toml").write_text(config or "")
    (folder / "test_block.py").write_text(block.code)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_block.py"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
        check=False,
    )


@pytest.mark.parametrize("block", of_kind("pytest"))
def test_pytest_blocks_pass_with_the_configuration_shown(block: Block, tmp_path: Path) -> None:
    assert block.config is not None, "a pytest block needs its ```toml configuration above it"
    result = run_pytest(block, tmp_path / "as-documented", block.config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b1 passed\b", result.stdout)
    # The configuration is what makes it pass: without it the async test does not run.
    bare = run_pytest(block, tmp_path / "without-config", None)
    assert not re.search(r"\b1 passed\b", bare.stdout)


async def test_a_command_after_transfer_is_refused(fake: FakeFlireo) -> None:
    """What the call-control section says: transfer ends the call, so `end` after it is a 400."""
    async with AsyncFlireo(api_key=fake.api_key, base_url=fake.url, rate_limit=None) as client:
        agent = await client.agents.create(name="Support")
        launched = await client.calls.create(destination="+31612345678", assistant_id=agent.id)
        while (await client.calls.get(launched.call_id)).status != "in-progress":
            await asyncio.sleep(0.05)
        await client.calls.transfer(launched.call_id, "+31201234567")
        with pytest.raises(BadRequestError):
            await client.calls.end(launched.call_id, "Bedankt voor het bellen.")
