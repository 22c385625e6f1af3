"""MkDocs hook: show the docstrings' reStructuredText roles (``:class:`Name```) as code.

The package's docstrings use Sphinx-style roles, which mkdocstrings' Markdown leaves in the
text as ``:class:<code>Name</code>``; keep only the code.
"""

from __future__ import annotations

import re
from typing import Any

ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|mod|exc|data|obj|const):(<code>)")


def on_page_content(html: str, page: Any, **kwargs: Any) -> str:
    """Drop the role prefix in front of inline code."""
    return ROLE.sub(r"\1", html)
