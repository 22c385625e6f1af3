"""Griffe extension: render the package's reStructuredText-flavoured docstrings as Markdown.

The docstrings show interactive sessions (``>>>`` lines, which Markdown would read as nested
quotes) and literal blocks introduced by ``::`` (whose indented code Markdown already shows as
code, but whose ``::`` would stay in the text). This fences the sessions and trims the ``::``.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

PROMPT = re.compile(r"^(\s*)(>>>|\.\.\.)( |$)")


def to_markdown(text: str) -> str:
    """The docstring text with doctest sessions fenced and ``::`` literal markers trimmed."""
    out: list[str] = []
    in_session = False
    indent = ""
    for line in text.splitlines():
        prompt = PROMPT.match(line)
        if prompt and not in_session:
            out.extend(["", f"{prompt.group(1)}```pycon"])
            in_session = True
        elif not prompt and in_session:
            out.extend([f"{indent}```", ""])
            in_session = False
        if prompt:
            indent = prompt.group(1)
        out.append(line)
    if in_session:
        out.append(f"{indent}```")
    result = "\n".join(out)
    # "Text::" followed by an indented block: the block is code already; keep one colon.
    return re.sub(r"(\S)::[ \t]*\n(\s*\n)", r"\1:\n\2", result)


class DocstringsToMarkdown(griffe.Extension):
    """Rewrites every docstring once it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)
