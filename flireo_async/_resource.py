"""The base of every generated resource class: turns a stub's arguments into a call.

Raw responses wrap the plain methods instead of repeating them: a resource made with
``raw=True`` hands back the whole :class:`RawResponse` where a plain one returns the parsed
model, and :func:`raw_response` / :func:`raw_page` give such a resource's methods their true
return type while keeping every argument of the plain method (overloads included).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar, cast

import attrs

from ._convert import DecodeError, decode, encode
from ._errors import RequestValidationError
from ._operation import Operation
from ._options import QueryValue, RequestOptions
from ._pagination import AsyncPaginator, DeferredItems
from ._query import encode_query
from ._response import RawResponse
from ._types import UnsetType

if TYPE_CHECKING:
    from ._config import ClientConfig

__all__ = ["BaseResource", "Requester", "raw_page", "raw_response"]

T = TypeVar("T")
P = ParamSpec("P")
ItemT = TypeVar("ItemT")
PageT = TypeVar("PageT")


class Requester(Protocol):
    """What a resource needs from its client."""

    @property
    def config(self) -> ClientConfig: ...

    async def request(
        self,
        op: Operation[T],
        *,
        path: tuple[str, ...] = (),
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        before_send: Callable[[], Awaitable[None]] | None = None,
        options: RequestOptions | None = None,
    ) -> RawResponse[T]: ...


class BaseResource:
    """Holds the client; generated subclasses add one method per operation of a tag.

    With ``raw=True`` every method returns the :class:`RawResponse` instead of its parsed
    model (a paginated list: its first page); use it only through :func:`raw_response` and
    :func:`raw_page`, which say so in the types.
    """

    def __init__(self, client: Requester, *, raw: bool = False) -> None:
        self._client = client
        self._raw = raw

    @staticmethod
    def _options(
        timeout: float | None,
        extra_headers: Mapping[str, str] | None,
        extra_query: Mapping[str, QueryValue] | None,
        extra_body: Mapping[str, Any] | None,
    ) -> RequestOptions | None:
        """The per-call options of a method call, checked now (nothing is sent if they are bad)."""
        return RequestOptions.build(timeout, extra_headers, extra_query, extra_body)

    async def _call(
        self,
        op: Operation[T],
        *,
        path: tuple[str, ...] = (),
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        options: RequestOptions | None = None,
    ) -> T:
        response = await self._client.request(op, path=path, query=query, body=body, options=options)
        if self._raw:
            return cast(T, response)
        return response.parsed

    def _paginate(
        self,
        op: Operation[T],
        *,
        path: tuple[str, ...] = (),
        query: Mapping[str, Any] | None = None,
        options: RequestOptions | None = None,
    ) -> AsyncPaginator[Any, T]:
        base = dict(query or {})
        # Checked now, so that `limit="10"` fails where it is written (and is never dropped).
        encode_query(op, base)
        if options is not None:
            options.check_query(op.id, {param.name: param.arg for param in op.query})

        if self._raw:
            # The first page, raw: raw_page() awaits it.
            return cast(
                AsyncPaginator[Any, T], self._client.request(op, path=path, query=base, options=options)
            )

        async def fetch(offset: int | UnsetType, limit: int | UnsetType) -> T:
            return await self._call(
                op, path=path, query={**base, "offset": offset, "limit": limit}, options=options
            )

        # Item iteration and the exports decode the rows as they reach them (see DeferredItems).
        rows_op = attrs.evolve(op, defer_items=True)

        async def fetch_rows(offset: int | UnsetType, limit: int | UnsetType) -> DeferredItems:
            query = {**base, "offset": offset, "limit": limit}
            response = await self._client.request(rows_op, path=path, query=query, options=options)
            return cast(DeferredItems, response.parsed)

        assert op.items is not None
        return AsyncPaginator(
            fetch,
            fetch_rows=fetch_rows,
            items=op.items,
            offset=base.get("offset"),
            limit=base.get("limit"),
            prefetch=self._client.config.prefetch,
            describe=(
                op.id,
                {k: v for k, v in base.items() if v is not None and not isinstance(v, UnsetType)},
            ),
        )

    @staticmethod
    def _body(model: Any, body: Any, fields: Mapping[str, Any]) -> Any:
        """The request model from a model instance, a dict of wire names, or keyword fields."""
        given = {k: v for k, v in fields.items() if not isinstance(v, UnsetType)}
        name = getattr(model, "__name__", str(model))
        if body is None:
            if attrs.has(model):
                known = {f.name for f in attrs.fields(model)} - {"extra"}
                for key in given:
                    if key not in known:
                        raise RequestValidationError(key, f"is not a field of {name}")
                missing = [
                    f.name for f in attrs.fields(model) if f.default is attrs.NOTHING and f.name not in given
                ]
                if missing:
                    raise RequestValidationError(missing[0], f"is required by {name}")
                body = model(**given)
            else:
                raise RequestValidationError("body", f"a {name} is required")
        elif isinstance(body, Mapping):
            body = _validated(dict(body), model, name)
            if given:
                body = attrs.evolve(body, **given)
        elif given:
            body = attrs.evolve(body, **given)
        # Round-trip through the strict decoder so that a wrong type names its field now,
        # before anything is sent.
        try:
            data = encode(body)
        except RecursionError:
            raise RequestValidationError("", f"invalid {name}: nested too deeply") from None
        return _validated(data, model, name)


def _validated(data: Any, model: Any, name: str) -> Any:
    try:
        return decode(data, model)
    except DecodeError as exc:
        raise RequestValidationError(exc.path, f"{exc.problem} (in {name})") from None
    except RecursionError:
        raise RequestValidationError("", f"invalid {name}: nested too deeply") from None
    except TypeError as exc:
        raise RequestValidationError("", f"invalid {name}: {exc}") from None


def raw_response(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[RawResponse[T]]]:
    """The method of a ``raw=True`` resource, typed as what it returns: a :class:`RawResponse`."""

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> RawResponse[T]:
        return cast(RawResponse[T], await method(*args, **kwargs))

    return call


def raw_page(
    method: Callable[P, AsyncPaginator[ItemT, PageT]],
) -> Callable[P, Awaitable[RawResponse[PageT]]]:
    """A paginated method of a ``raw=True`` resource: awaiting it gives the first page raw."""

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> RawResponse[PageT]:
        return await cast(Awaitable[RawResponse[PageT]], method(*args, **kwargs))

    return call
