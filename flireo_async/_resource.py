"""The base of every generated resource class: turns a stub's arguments into a call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import attrs

from ._convert import DecodeError, decode, encode
from ._errors import RequestValidationError
from ._operation import Operation
from ._pagination import AsyncPaginator
from ._query import encode_query
from ._response import RawResponse
from ._types import UnsetType

if TYPE_CHECKING:
    from ._config import ClientConfig

__all__ = ["BaseResource", "Requester"]

T = TypeVar("T")


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
    ) -> RawResponse[T]: ...


class BaseResource:
    """Holds the client; generated subclasses add one method per operation of a tag."""

    def __init__(self, client: Requester) -> None:
        self._client = client

    async def _call(
        self,
        op: Operation[T],
        *,
        path: tuple[str, ...] = (),
        query: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> T:
        response = await self._client.request(op, path=path, query=query, body=body)
        return response.parsed

    async def _call_raw(
        self,
        op: Operation[T],
        *,
        path: tuple[str, ...] = (),
        query: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> RawResponse[T]:
        return await self._client.request(op, path=path, query=query, body=body)

    def _paginate(
        self,
        op: Operation[T],
        *,
        path: tuple[str, ...] = (),
        query: Mapping[str, Any] | None = None,
    ) -> AsyncPaginator[Any, T]:
        base = dict(query or {})
        # Checked now, so that `limit="10"` fails where it is written (and is never dropped).
        encode_query(op, base)

        async def fetch(offset: int | UnsetType, limit: int | UnsetType) -> T:
            return await self._call(op, path=path, query={**base, "offset": offset, "limit": limit})

        assert op.items is not None
        return AsyncPaginator(
            fetch,
            items=op.items,
            offset=base.get("offset"),
            limit=base.get("limit"),
            prefetch=self._client.config.prefetch,
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
