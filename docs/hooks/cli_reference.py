"""MkDocs hook: render ``flireo ... --help`` for every command into the CLI reference page.

The page holds a marker; at build time it is replaced by the help text of the real argparse
parser (``flireo_async.cli.build_parser``), so the reference cannot drift from the command.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from typing import Any

MARKER = "<!-- flireo-cli-reference -->"
# argparse wraps to the terminal width; fix it so the page does not depend on who builds it.
WIDTH = "100"


def walk(parser: argparse.ArgumentParser, words: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    """Every (command words, help text) pair, the parser itself first, then its subcommands."""
    yield words, parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, (*words, name))


def render() -> str:
    """The Markdown for every command's help."""
    from flireo_async.cli import build_parser

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        sections = []
        for words, text in walk(build_parser(), ("flireo",)):
            command = " ".join(words)
            level = "#" * min(len(words) + 1, 4)
            sections.append(f"{level} `{command}`\n\n```text\n$ {command} --help\n{text.rstrip()}\n```\n")
        return "\n".join(sections)
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """Fill the marker of the page that has one."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, render())
