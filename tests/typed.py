"""Narrowing helpers for tests: a model field that may be absent, checked present."""

from __future__ import annotations

from typing import TypeVar

from flireo_async import UnsetType

T = TypeVar("T")


def present(value: T | UnsetType | None) -> T:
    """``value``, asserted to be neither ``UNSET`` nor ``None``."""
    assert value is not None
    assert not isinstance(value, UnsetType)
    return value
