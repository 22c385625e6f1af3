"""Async iteration over the offset-paginated lists (calls, usage logs, campaign leads).

The paginator knows only the conventions every paginated Flireo list shares: ``limit`` and
``offset`` query parameters and a ``pagination`` object ``{total, limit, offset}`` that may be
absent (then the response is complete). It fetches up to ``prefetch`` pages ahead while the
caller consumes the current one and never holds more than ``prefetch + 1`` pages.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import Any, Generic, TypeVar

import attrs

from ._generated.models import Pagination
from ._logging import logger
from ._types import UnsetType

__all__ = ["AsyncPaginator", "Page"]

ItemT = TypeVar("ItemT")
PageT = TypeVar("PageT")


@attrs.frozen
class Page(Generic[ItemT, PageT]):
    """One page: its ``items``, its ``pagination`` (``None`` when absent), and the decoded
    ``response`` with every other key (for usage logs, ``response.summary``)."""

    items: list[ItemT]
    offset: int
    total: int | None
    response: PageT

    @property
    def pagination(self) -> Pagination | None:
        """``{total, limit, offset}`` of this page, or ``None`` when the API left it out."""
        value = getattr(self.response, "pagination", None)
        return value if isinstance(value, Pagination) else None


def _as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class AsyncPaginator(Generic[ItemT, PageT]):
    """``await`` it for the first :class:`Page`; ``async for item in it`` for every item in
    order; ``async for page in it.pages()`` for pages.

    Each iteration starts from the first page again; break out of a loop early and the pages
    fetched ahead are cancelled.
    """

    def __init__(
        self,
        fetch: Callable[[int | UnsetType, int | UnsetType], Awaitable[PageT]],
        *,
        items: str,
        offset: Any,
        limit: Any,
        prefetch: int,
    ) -> None:
        self._fetch = fetch
        self._items = items
        self._start = _as_int(offset) or 0
        self._limit: int | UnsetType = _as_int(limit) or UnsetType.UNSET
        self.prefetch = prefetch

    def __await__(self) -> Generator[Any, None, Page[ItemT, PageT]]:
        return self._page_at(self._start).__await__()

    async def _page_at(self, offset: int) -> Page[ItemT, PageT]:
        response = await self._fetch(offset if offset else UnsetType.UNSET, self._limit)
        items = getattr(response, self._items)
        pagination = getattr(response, "pagination", None)
        total = None if isinstance(pagination, UnsetType) or pagination is None else _as_int(pagination.total)
        return Page(items=items, offset=offset, total=total, response=response)

    async def __aiter__(self) -> AsyncIterator[ItemT]:
        async for page in self.pages():
            for item in page.items:
                yield item

    async def pages(self) -> AsyncIterator[Page[ItemT, PageT]]:
        """Every page in order, fetching up to ``prefetch`` pages ahead concurrently."""
        first = await self._page_at(self._start)
        yield first
        if first.total is None or not first.items:
            return
        pagination = first.pagination
        stride = _as_int(getattr(pagination, "limit", None)) or len(first.items)
        total = first.total
        next_offset = first.offset + len(first.items)
        ahead: collections.deque[tuple[int, asyncio.Task[Page[ItemT, PageT]]]] = collections.deque()
        try:
            while True:
                while len(ahead) < max(1, self.prefetch) and next_offset < total:
                    ahead.append((next_offset, asyncio.ensure_future(self._page_at(next_offset))))
                    next_offset += stride
                if not ahead:
                    return
                _, task = ahead.popleft()
                page = await task
                del task
                if page.total is not None and page.total != total:
                    logger.debug("total changed from %d to %d while paginating", total, page.total)
                    total = page.total
                    # Pages planned past the new end are dropped; a longer list is followed.
                    while ahead and ahead[-1][0] >= total:
                        next_offset, dropped = ahead.pop()
                        dropped.cancel()
                if not page.items:
                    return
                yield page
                if page.total is None:
                    return
                del page
        finally:
            for _, pending in ahead:
                pending.cancel()
