"""Query strings: every value is checked against the parameter the spec declares before sending.

``None`` and :data:`~flireo_async.UNSET` both mean "not sent". Integers must be real integers
within the declared bounds (``limit="10"``, ``0`` or ``2.5`` are refused, never dropped), a
date-time accepts an aware or naive ``datetime`` (naive is UTC) or a ``date`` (the start of that
day in UTC), and a parameter declared ``not_before`` another must not precede it.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping
from typing import Any

from ._convert import format_datetime
from ._errors import RequestValidationError
from ._operation import Operation, QueryParam
from ._types import UnsetType

__all__ = ["encode_query"]


def _kind_of(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _moment(param: QueryParam, value: Any) -> _dt.datetime:
    if isinstance(value, _dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=_dt.timezone.utc)
    if isinstance(value, _dt.date):
        return _dt.datetime.combine(value, _dt.time(0, 0), tzinfo=_dt.timezone.utc)
    raise RequestValidationError(
        param.arg, f"must be a datetime or a date (taken as 00:00 UTC), got {_kind_of(value)}"
    )


def _number(param: QueryParam, value: Any, *, integer: bool) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float) if not integer else int):
        expected = "an integer" if integer else "a number"
        raise RequestValidationError(param.arg, f"must be {expected}, got {_kind_of(value)}")
    if not integer and not math.isfinite(value):
        raise RequestValidationError(param.arg, f"must be a finite number, got {value!r}")
    if param.minimum is not None and value < param.minimum:
        raise RequestValidationError(param.arg, f"must be at least {param.minimum:g}, got {value!r}")
    if param.maximum is not None and value > param.maximum:
        raise RequestValidationError(param.arg, f"must be at most {param.maximum:g}, got {value!r}")
    return value


def _encode(param: QueryParam, value: Any) -> tuple[str, Any]:
    """The query text of one value, and the value to compare for ``not_before``."""
    if param.kind == "date-time":
        moment = _moment(param, value)
        return format_datetime(moment), moment
    if param.kind == "integer":
        number = _number(param, value, integer=True)
        return str(number), number
    if param.kind == "number":
        number = _number(param, value, integer=False)
        return repr(float(number)) if isinstance(number, float) else str(number), number
    if param.kind == "boolean":
        if not isinstance(value, bool):
            raise RequestValidationError(param.arg, f"must be True or False, got {_kind_of(value)}")
        return ("true" if value else "false"), value
    if not isinstance(value, str):
        raise RequestValidationError(param.arg, f"must be a string, got {_kind_of(value)}")
    return value, value


def encode_query(op: Operation[Any], query: Mapping[str, Any] | None) -> dict[str, str]:
    """The query parameters to send for ``op``, as text; raises :class:`RequestValidationError`."""
    if not query:
        return {}
    declared = {param.name: param for param in op.query}
    params: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name, value in query.items():
        if value is None or isinstance(value, UnsetType):
            continue
        param = declared.get(name)
        if param is None:
            raise RequestValidationError(name, f"is not a query parameter of {op.id}")
        params[name], values[name] = _encode(param, value)
    for param in op.query:
        earlier = param.not_before
        if earlier in values and param.name in values and values[param.name] < values[earlier]:
            raise RequestValidationError(
                param.arg, f"({params[param.name]}) is before {declared[earlier].arg} ({params[earlier]})"
            )
    return params
