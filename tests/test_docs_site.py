"""The docs site's build hooks: the CLI reference is the real parser's help."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

from flireo_async.cli import build_parser

from .conftest import import_file

HOOKS = Path(__file__).resolve().parent.parent / "docs" / "hooks"


def load(name: str) -> ModuleType:
    return import_file(HOOKS / f"{name}.py", f"docs_hook_{name}")


def test_cli_reference_has_every_command_and_option() -> None:
    hook = load("cli_reference")
    page = hook.on_page_markdown(f"# CLI reference\n\n{hook.MARKER}\n", page=None)
    assert hook.MARKER not in page
    commands = [" ".join(words) for words, _ in hook.walk(build_parser(), ("flireo",))]
    assert {"flireo", "flireo export", "flireo calls launch", "flireo mock", "flireo demo"} <= set(commands)
    for command in commands:
        assert f"$ {command} --help\n" in page
    for option in ("--agent-id", "--journal", "--start-date", "--inbound-script"):
        assert option in page


def test_pages_without_the_marker_are_left_alone() -> None:
    hook = load("cli_reference")
    assert hook.on_page_markdown("# Other\n", page=None) == "# Other\n"


def test_rst_roles_become_plain_code() -> None:
    hook = load("rst_roles")
    html = "see :class:<code>FileLaunchStore</code> and :meth:<code>create_many</code>"
    assert (
        hook.on_page_content(html, page=None)
        == "see <code>FileLaunchStore</code> and <code>create_many</code>"
    )


def test_doctest_sessions_are_fenced_and_literal_markers_trimmed() -> None:
    hook = load("griffe_docstrings")
    text = "Use it::\n\n    client = AsyncFlireo()\n\nOr:\n\n>>> import flireo_async\n... \nDone."
    assert hook.to_markdown(text) == (
        "Use it:\n\n    client = AsyncFlireo()\n\nOr:\n\n\n```pycon\n>>> import flireo_async\n... \n```\n\nDone."
    )
    assert hook.to_markdown("Plain text: no change.") == "Plain text: no change."


def test_readme_links_point_at_files_that_exist() -> None:
    root = HOOKS.parent.parent
    readme = (root / "README.md").read_text()
    targets = [t for t in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme) if "://" not in t]
    assert len(targets) >= 10
    missing = [t for t in targets if not (root / t).exists()]
    assert missing == []
