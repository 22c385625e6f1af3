"""Per-call options (``timeout=``, ``extra_headers=``, ``extra_query=``, ``extra_body=``) and the
header rules shared with the client's ``default_headers``.

Every generated method takes the four options as keyword-only arguments. They are checked
when the method is called, before anything is sent, and applied to every attempt of the call
(and to every page of a paginated list).

``Authorization`` can be set neither here nor in ``default_headers``: the client always sends
its own ``api_key``, and a header that silently replaced it would send requests under another
key than the one the client paces and reports. Use ``with_options(api_key=...)`` instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Union

import attrs

from ._errors import RequestValidationError

__all__ = ["OPTION_NAMES", "QueryValue", "RequestOptions", "check_headers", "merge_headers"]

QueryValue = Union[str, int, float, bool]
"""What ``extra_query`` accepts for a value (booleans are sent as ``true`` / ``false``)."""

OPTION_NAMES = ("timeout", "extra_headers", "extra_query", "extra_body")
"""The keyword arguments every generated method takes besides the operation's own."""

_PROTECTED = frozenset({"authorization"})
# RFC 9110 token characters: what a header name may be made of.
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def check_headers(headers: object, argument: str) -> dict[str, str]:
    """``headers`` as a plain dict, or :class:`RequestValidationError` naming the bad header.

    Names must be HTTP tokens and values strings without line breaks or other control
    characters (which would let a value smuggle in another header); ``Authorization`` is refused.
    """
    if not isinstance(headers, Mapping):
        raise RequestValidationError(
            argument, f"must be a mapping of header names to strings, got {type(headers).__name__}"
        )
    out: dict[str, str] = {}
    for name, value in headers.items():
        where = f"{argument}[{name!r}]"
        if not isinstance(name, str) or not name or not set(name) <= _TOKEN:
            raise RequestValidationError(where, "is not a valid HTTP header name")
        if name.lower() in _PROTECTED:
            raise RequestValidationError(
                where,
                "cannot be set: the client always authenticates with its api_key "
                "(use AsyncFlireo(api_key=...) or client.with_options(api_key=...))",
            )
        if not isinstance(value, str):
            raise RequestValidationError(where, f"must be a string, got {type(value).__name__}")
        if any((ord(char) < 32 and char != "\t") or ord(char) == 127 for char in value):
            raise RequestValidationError(where, "must not contain line breaks or control characters")
        out[name] = value
    return out


def merge_headers(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """``base`` with ``extra`` over it; names compare case-insensitively, as HTTP does."""
    if not extra:
        return dict(base)
    replaced = {name.lower() for name in extra}
    merged = {name: value for name, value in base.items() if name.lower() not in replaced}
    merged.update(extra)
    return merged


def _query_text(where: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RequestValidationError(where, f"must be a finite number, got {value!r}")
        return repr(value)
    if isinstance(value, str):
        return value
    raise RequestValidationError(where, f"must be a string, number or boolean, got {type(value).__name__}")


@attrs.frozen
class RequestOptions:
    """The per-call options of one method call, checked (see :meth:`build`)."""

    timeout: float | None = None
    extra_headers: Mapping[str, str] = attrs.field(factory=dict, repr=lambda h: repr(sorted(h)))
    """Header names only in the repr: a value may be a credential (a proxy's or a gateway's)."""
    extra_query: Mapping[str, str] = attrs.field(factory=dict)
    extra_body: Mapping[str, Any] | None = None

    @classmethod
    def build(
        cls,
        timeout: float | None,
        extra_headers: Mapping[str, str] | None,
        extra_query: Mapping[str, QueryValue] | None,
        extra_body: Mapping[str, Any] | None,
    ) -> RequestOptions | None:
        """The options of a call, or ``None`` when none is given; raises
        :class:`RequestValidationError` naming the bad option."""
        if timeout is None and extra_headers is None and extra_query is None and extra_body is None:
            return None
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise RequestValidationError(
                "timeout", f"must be a finite number of seconds > 0 or None, got {timeout!r}"
            )
        headers = check_headers(extra_headers, "extra_headers") if extra_headers is not None else {}
        query: dict[str, str] = {}
        if extra_query is not None:
            if not isinstance(extra_query, Mapping):
                raise RequestValidationError(
                    "extra_query", f"must be a mapping, got {type(extra_query).__name__}"
                )
            for name, value in extra_query.items():
                where = f"extra_query[{name!r}]"
                if not isinstance(name, str) or not name:
                    raise RequestValidationError(where, "must be a non-empty string")
                query[name] = _query_text(where, value)
        if extra_body is not None:
            if not isinstance(extra_body, Mapping):
                raise RequestValidationError(
                    "extra_body", f"must be a mapping, got {type(extra_body).__name__}"
                )
            for name in extra_body:
                if not isinstance(name, str):
                    raise RequestValidationError("extra_body", f"keys must be strings, got {name!r}")
            extra_body = dict(extra_body)
        return cls(None if timeout is None else float(timeout), headers, query, extra_body)

    def check_query(self, op_id: str, declared: Mapping[str, str]) -> None:
        """Refuse an ``extra_query`` key that the operation declares (``declared`` maps wire
        names to argument names): those go through their argument, where they are checked."""
        for name in self.extra_query:
            if name in declared:
                raise RequestValidationError(
                    f"extra_query[{name!r}]", f"is a parameter of {op_id}: pass it as {declared[name]}="
                )
