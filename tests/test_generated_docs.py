"""The docstrings the generator writes for resource methods read as whole sentences."""

from __future__ import annotations

import inspect

import pytest

from codegen.generate import python_doc
from flireo_async import resources


def method_docs() -> list[tuple[str, str]]:
    found = []
    for cls_name in resources.__all__:
        cls = getattr(resources, cls_name)
        for name, member in inspect.getmembers(cls, inspect.iscoroutinefunction):
            if not name.startswith("_") and member.__doc__:
                found.append((f"{cls_name}.{name}", member.__doc__))
    return found


def test_there_are_docstrings_to_check() -> None:
    assert len(method_docs()) > 50


@pytest.mark.parametrize(("where", "doc"), method_docs(), ids=[w for w, _ in method_docs()])
def test_a_generated_docstring_has_no_sentence_fragments(where: str, doc: str) -> None:
    assert doc.count("(") == doc.count(")"), where
    assert doc.count("`") % 2 == 0, where
    assert "percent-encode" not in doc.lower(), where


def test_an_abbreviation_does_not_end_a_sentence() -> None:
    text = "Agent id (opaque; e.g. `+` becomes `%2B` when encoded). Keep it. I.e. nothing else."
    assert python_doc(text) == "Keep it. I.e. nothing else."
