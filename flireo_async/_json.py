"""JSON parsing and serialising for the whole SDK, through orjson when it is installed.

orjson (the ``flireo-async[speed]`` extra) parses a page of 1,000 usage logs several times
faster than the standard library; it is optional because it is a compiled wheel that not every
platform has, and everything works the same without it. ``FLIREO_JSON=stdlib`` in the
environment (read at import) or :func:`use` forces the standard library, so that the test suite
runs once with each backend.

Both backends behave the same for what the SDK reads and writes: they write compact separators
and non-ASCII characters as UTF-8 (not ``\\u`` escapes), so files written with one backend read
back byte for byte with the other (and with any JSON reader); both refuse NaN and Infinity in
either direction (they are not JSON), and both report JSON nested past their depth limit as
``RecursionError``.
"""

from __future__ import annotations

import json as _stdlib
import math
import os
from collections.abc import Callable
from typing import Any, Literal

__all__ = ["Backend", "backend", "dumps", "dumps_text", "loads", "non_finite_path", "use"]

Backend = Literal["orjson", "stdlib"]
"""The name of a JSON backend."""

try:  # pragma: no cover - depends on the environment
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None  # type: ignore[assignment]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _std_loads(data: bytes | bytearray | memoryview | str) -> Any:
    return _stdlib.loads(
        bytes(data) if isinstance(data, memoryview) else data, parse_constant=_reject_constant
    )


def _std_dumps(value: Any) -> bytes:
    return _stdlib.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _fast_loads(data: bytes | bytearray | memoryview | str) -> Any:
    try:
        return _orjson.loads(data)
    except _orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit"):
            raise RecursionError("JSON nested too deeply") from None
        raise


def non_finite_path(value: Any, path: str = "") -> str | None:
    """The dotted path of the first NaN or infinite number in encoded JSON, if any."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "body"
    if isinstance(value, dict):
        for key, item in value.items():
            found = non_finite_path(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = non_finite_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


# Types orjson would write that the standard library refuses: passed through (TypeError) so
# that the fallback below decides, and both backends accept the same values.
_PASSTHROUGH = (
    getattr(_orjson, "OPT_PASSTHROUGH_DATETIME", 0)
    | getattr(_orjson, "OPT_PASSTHROUGH_DATACLASS", 0)
    | getattr(_orjson, "OPT_PASSTHROUGH_SUBCLASS", 0)
)


def _fast_dumps(value: Any) -> bytes:
    try:
        out: bytes = _orjson.dumps(value, option=_PASSTHROUGH)
    except TypeError as exc:
        # orjson refuses what the standard library accepts in a few corners (integers past
        # 64 bits, subclasses it does not know, non-string keys): those go the slow way, so
        # that both backends accept the same values.
        try:
            return _std_dumps(value)
        except (TypeError, ValueError):
            raise exc from None
    # orjson writes NaN and infinities as null; the standard library refuses them.
    if b"null" in out and non_finite_path(value) is not None:
        raise ValueError("Out of range float values are not JSON compliant")
    return out


_loads: Callable[[Any], Any] = _std_loads
_dumps: Callable[[Any], bytes] = _std_dumps
_name: Backend = "stdlib"


def use(name: Backend | None = None) -> Backend:
    """Switch the JSON backend for the process: ``"orjson"``, ``"stdlib"``, or ``None`` for the
    default (orjson when installed, unless ``FLIREO_JSON=stdlib``); return the one in use.

    Raises ``ValueError`` for an unknown name, or for ``"orjson"`` when it is not installed.
    """
    global _loads, _dumps, _name
    if name is None:
        name = "stdlib" if _orjson is None or os.environ.get("FLIREO_JSON", "") == "stdlib" else "orjson"
    if name == "orjson":
        if _orjson is None:
            raise ValueError("the JSON backend 'orjson' is not installed (pip install 'flireo-async[speed]')")
        _loads, _dumps, _name = _fast_loads, _fast_dumps, "orjson"
    elif name == "stdlib":
        _loads, _dumps, _name = _std_loads, _std_dumps, "stdlib"
    else:
        raise ValueError(f"unknown JSON backend {name!r}: use 'orjson' or 'stdlib'")
    return _name


def backend() -> Backend:
    """The JSON backend in use."""
    return _name


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON text (bytes are taken as UTF-8); raises ``ValueError`` on invalid JSON and
    ``RecursionError`` (stdlib) or ``ValueError`` (orjson) when nested too deeply."""
    return _loads(data)


def dumps(value: Any) -> bytes:
    """Serialise to compact UTF-8 JSON bytes; raises ``ValueError`` for NaN or infinities and
    ``TypeError`` for what JSON cannot carry."""
    return _dumps(value)


def dumps_text(value: Any) -> str:
    """:func:`dumps` as a ``str``."""
    return _dumps(value).decode()


use()
