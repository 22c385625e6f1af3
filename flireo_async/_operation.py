"""The static description of one API operation, generated from the spec for every endpoint.

Generated stubs pass an :class:`Operation` plus the call's arguments to the session layer;
everything endpoint-specific lives here as data, so the session layer stays generic.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import attrs

__all__ = ["Operation", "PerKeyLimit", "QueryParam"]

T = TypeVar("T")


@attrs.frozen
class PerKeyLimit:
    """An extra client-side rate limit per value of a path parameter (e.g. per call)."""

    key_param: str
    requests: int
    per_seconds: float


@attrs.frozen
class QueryParam:
    """One query parameter as the spec declares it; values are checked against it before sending.

    ``kind`` is the JSON Schema type (``integer``, ``number``, ``boolean``, ``string``) or
    ``date-time``. ``not_before`` names another parameter whose value this one must not precede
    (``end_date`` after ``start_date``).
    """

    name: str
    arg: str
    """The Python argument name (for error messages)."""
    kind: str
    minimum: float | None = None
    maximum: float | None = None
    not_before: str | None = None


@attrs.frozen
class Operation(Generic[T]):
    """One endpoint: how to build its request and how to read its response.

    ``T`` is what the method returns. ``result_type`` is the type the (unwrapped) body is
    decoded into; for paginated operations it is the page model and ``items`` names the
    attribute that holds the page's items.
    """

    id: str
    method: str
    path: str
    result_type: Any
    idempotent: bool
    path_params: tuple[str, ...] = ()
    path_names: tuple[str, ...] = ()
    """The Python argument name of each path parameter (for error messages)."""
    query: tuple[QueryParam, ...] = ()
    """The query parameters the operation accepts; nothing else is sent."""
    unwrap: str | None = None
    unwrap_aliases: tuple[str, ...] = ()
    unwrap_bare: bool = False
    bare_array_key: str | None = None
    returns_none: bool = False
    not_found_as_none: bool = False
    items: str | None = None
    per_key_limit: PerKeyLimit | None = None
    defer_items: bool = False
    """Decode the page around ``items`` but leave the items as parsed JSON, in a
    :class:`~flireo_async._pagination.DeferredItems`: the paginator then decodes each item as it
    is iterated. Set by the paginator on a copy of the operation, never by the generator."""
