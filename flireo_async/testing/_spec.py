"""The OpenAPI document, shipped once as package data (``flireo_async/_generated/openapi.json``).

Only the tools that need the whole document read it (the fake server, spec tests); the SDK
itself runs on the generated code alone.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

__all__ = ["load_spec"]


@functools.cache
def load_spec() -> dict[str, Any]:
    """The spec as a dict, parsed once per process. Treat it as read-only (it is shared)."""
    text = resources.files("flireo_async._generated").joinpath("openapi.json").read_text(encoding="utf-8")
    spec: dict[str, Any] = json.loads(text)
    return spec
