"""Async iteration over the offset-paginated lists (calls, usage logs, campaign leads).

The paginator knows only the conventions every paginated Flireo list shares: ``limit`` and
``offset`` query parameters and a ``pagination`` object ``{total, limit, offset}`` that may be
absent (then the response is complete). It fetches up to ``prefetch`` pages ahead while the
caller consumes the current one and never holds more than ``prefetch + 1`` pages.

The next offset is always the current one plus the number of items received, never the
``limit`` the server echoes (which may be 0, negative or wrong): a page that comes back shorter
or longer than planned makes the paginator drop the pages it fetched ahead and continue right
after the last item it yielded. It stops on an empty page and at ``total``, so it always ends
and never asks for a negative offset.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as _dt
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import attrs

from ._errors import FlireoError
from ._logging import logger
from ._types import UnsetType

if TYPE_CHECKING:  # annotations only: the core does not import generated code at run time
    from ._generated.models import Pagination, UsageSummary

__all__ = ["AsyncPaginator", "Page"]

ItemT = TypeVar("ItemT")
PageT = TypeVar("PageT")


@attrs.frozen(repr=False)
class Page(Generic[ItemT, PageT]):
    """One page: its ``items``, its ``pagination`` (``None`` when absent), its ``summary`` (usage
    logs), and the decoded ``response`` with every other key.

    For paging by hand: ``while page.has_next_page(): page = await page.next_page()``.
    """

    items: list[ItemT]
    offset: int
    total: int | None
    response: PageT
    _fetch: Callable[[int], Awaitable[Page[ItemT, PageT]]] | None = attrs.field(
        default=None, eq=False, alias="fetch"
    )
    """Fetches the page at an offset, with the same arguments and options as this one."""

    def has_next_page(self) -> bool:
        """Whether the list goes on after this page: this page held items and the ``total``
        the API reported lies beyond them. A list without ``pagination`` is complete."""
        return (
            self._fetch is not None
            and self.total is not None
            and bool(self.items)
            and self.offset + len(self.items) < self.total
        )

    async def next_page(self) -> Page[ItemT, PageT]:
        """The page right after this one's items; raises :class:`~flireo_async.FlireoError`
        when :meth:`has_next_page` is false."""
        if not self.has_next_page() or self._fetch is None:
            raise FlireoError(
                f"no next page after offset {self.offset} ({len(self.items)} items, total {self.total}); "
                "check page.has_next_page() first"
            )
        return await self._fetch(self.offset + len(self.items))

    def __repr__(self) -> str:
        kind = f" {type(self.items[0]).__name__}" if self.items else ""
        return (
            f"Page(offset={self.offset}, items=[{len(self.items)}{kind}], total={self.total}, "
            f"has_next_page={self.has_next_page()})"
        )

    @property
    def pagination(self) -> Pagination | None:
        """``{total, limit, offset}`` of this page, or ``None`` when the API left it out."""
        return cast("Pagination | None", _present(getattr(self.response, "pagination", None)))

    @property
    def summary(self) -> UsageSummary | None:
        """The totals the usage list carries (``client.usage.list``); ``None`` for lists without
        a summary or when the API left it out."""
        return cast("UsageSummary | None", _present(getattr(self.response, "summary", None)))


def _present(value: Any) -> Any:
    """``value``, or ``None`` when the API left it out (UNSET) or sent null."""
    return None if value is None or isinstance(value, UnsetType) else value


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
        describe: tuple[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self._fetch = fetch
        self._describe = describe
        self._items = items
        start = _as_int(offset) or 0
        self._start = max(0, start)
        self._limit: int | UnsetType = _as_int(limit) or UnsetType.UNSET
        self.prefetch = prefetch

    def __await__(self) -> Generator[Any, None, Page[ItemT, PageT]]:
        return self._page_at(self._start).__await__()

    async def _page_at(self, offset: int) -> Page[ItemT, PageT]:
        response = await self._fetch(offset if offset else UnsetType.UNSET, self._limit)
        items = getattr(response, self._items)
        pagination = getattr(response, "pagination", None)
        total = None if _present(pagination) is None else _as_int(getattr(pagination, "total", None))
        return Page(items=items, offset=offset, total=total, response=response, fetch=self._page_at)

    def __repr__(self) -> str:
        operation, query = self._describe or ("", {})
        shown = [operation] if operation else []
        for name, value in query.items():
            text = value.isoformat() if isinstance(value, (_dt.date, _dt.datetime)) else repr(value)
            shown.append(f"{name}={text}")
        shown.append(f"prefetch={self.prefetch}")
        return f"AsyncPaginator({', '.join(shown)})"

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
        # Pages ahead are planned at the size of the first page; `cursor` is where the next
        # page must start, the offset right after the last item yielded.
        stride = len(first.items)
        total = first.total
        cursor = first.offset + len(first.items)
        next_offset = cursor
        ahead: collections.deque[tuple[int, asyncio.Task[Page[ItemT, PageT]]]] = collections.deque()

        def drop_ahead() -> None:
            while ahead:
                ahead.pop()[1].cancel()

        try:
            while True:
                while len(ahead) < max(1, self.prefetch) and next_offset < total:
                    ahead.append((next_offset, asyncio.ensure_future(self._page_at(next_offset))))
                    next_offset += stride
                if not ahead:
                    return
                offset, task = ahead.popleft()
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
                cursor = offset + len(page.items)
                if len(page.items) != stride:
                    # A short (or long) page: the pages planned after it would skip (or repeat)
                    # items. Plan again from right after this page.
                    logger.debug(
                        "page at offset %d held %d items instead of %d", offset, len(page.items), stride
                    )
                    drop_ahead()
                    next_offset = cursor
                del page
        finally:
            drop_ahead()
