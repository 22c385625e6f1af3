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

from ._convert import DecodeError
from ._errors import FlireoError
from ._logging import logger
from ._types import UnsetType

if TYPE_CHECKING:  # annotations only: the core does not import generated code at run time
    from ._generated.models import Pagination, UsageSummary

__all__ = ["AsyncPaginator", "DeferredItems", "Page"]

_DECODE_AHEAD = 100
"""Rows decoded at a time by item iteration (well under the collector's threshold of 700)."""

ItemT = TypeVar("ItemT")
PageT = TypeVar("PageT")


@attrs.frozen
class DeferredItems:
    """A page whose items are still parsed JSON, decoded a hundred at a time as they are reached.

    Why: decoding a whole page into models as soon as it arrives keeps ``prefetch + 1`` pages
    of models alive while the caller works through one; every one of them is an object the
    garbage collector tracks, and collecting among thousands of live models was a quarter of
    the export's time. Decoded as they are reached, models the caller drops are freed at once.
    """

    response: Any
    """The page model, its item list empty (pagination, summary and any other key decoded)."""
    rows: list[Any]
    """The items, as parsed JSON."""
    item_type: Any
    decode_row: Callable[[Any, Any], Any]
    """Decodes one row (``decode_row(row, item_type)``); raises DecodeError."""
    decode_rows: Callable[[list[Any]], list[Any]]
    """Decodes a list of rows at once (faster per row); raises DecodeError."""
    invalid: Callable[[int, Exception], Exception]
    """The error to raise for the row at an index that does not decode, with the response's
    status, headers and body, as an eagerly decoded page would have raised."""


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


def _decode_until_bad(
    deferred: DeferredItems, start: int, chunk: list[Any]
) -> tuple[list[Any], Exception | None]:
    """The rows of ``chunk`` (``start`` is its first index in the page) decoded up to the first
    that fails, and the error for that one (``None`` when none fails)."""
    items = []
    for index, row in enumerate(chunk, start):
        try:
            items.append(deferred.decode_row(row, deferred.item_type))
        except DecodeError as exc:
            return items, deferred.invalid(index, exc)
    return items, None


def _total(response: Any) -> int | None:
    """The ``total`` of a page's pagination; ``None`` when the list came without one."""
    pagination = getattr(response, "pagination", None)
    return None if _present(pagination) is None else _as_int(getattr(pagination, "total", None))


def _as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class AsyncPaginator(Generic[ItemT, PageT]):
    """``await`` it for the first :class:`Page`; ``async for item in it`` for every item in
    order; ``async for page in it.pages()`` for pages.

    Each iteration starts from the first page again; break out of a loop early and the pages
    fetched ahead are cancelled.

    ``async for item in it`` decodes each item when it is reached (pages ahead wait as parsed
    JSON), which keeps a long export fast and its memory flat: an item the response got wrong
    raises :class:`~flireo_async.APIResponseValidationError` there, after the items before it.
    ``pages()`` and ``await`` decode whole pages, and raise for the page.
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
        fetch_rows: Callable[[int | UnsetType, int | UnsetType], Awaitable[DeferredItems]] | None = None,
    ) -> None:
        self._fetch = fetch
        self._fetch_rows = fetch_rows
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
        return Page(
            items=items, offset=offset, total=_total(response), response=response, fetch=self._page_at
        )

    async def _rows_at(self, offset: int) -> Page[Any, DeferredItems]:
        assert self._fetch_rows is not None
        deferred = await self._fetch_rows(offset if offset else UnsetType.UNSET, self._limit)
        return Page(items=deferred.rows, offset=offset, total=_total(deferred.response), response=deferred)

    def __repr__(self) -> str:
        operation, query = self._describe or ("", {})
        shown = [operation] if operation else []
        for name, value in query.items():
            text = value.isoformat() if isinstance(value, (_dt.date, _dt.datetime)) else repr(value)
            shown.append(f"{name}={text}")
        shown.append(f"prefetch={self.prefetch}")
        return f"AsyncPaginator({', '.join(shown)})"

    async def __aiter__(self) -> AsyncIterator[ItemT]:
        async for items, _page, _ends_page in self._batches():
            for item in items:
                yield item

    async def _batches(self) -> AsyncIterator[tuple[list[ItemT], Page[Any, Any], bool]]:
        """The items in order, in lists decoded as they are reached, each with its page and
        whether it is the page's last list (the exports write and report progress by these)."""
        if self._fetch_rows is None:
            async for page in self.pages():
                yield page.items, page, True
            return
        async for deferred_page in self._pages(self._rows_at):
            deferred: DeferredItems = deferred_page.response
            rows = deferred_page.items
            # A few rows at a time: nearly the speed of decoding the whole page at once, and
            # few enough models alive at once that the garbage collector hardly runs.
            for start in range(0, max(len(rows), 1), _DECODE_AHEAD):
                chunk = rows[start : start + _DECODE_AHEAD]
                ends_page = start + _DECODE_AHEAD >= len(rows)
                error: Exception | None = None
                try:
                    items = deferred.decode_rows(chunk)
                except DecodeError:
                    # Row by row: the rows before the bad one are still delivered, then the
                    # error names the bad one's index in the page.
                    items, error = _decode_until_bad(deferred, start, chunk)
                if error is not None:
                    if items:
                        yield items, deferred_page, False
                    raise error from None
                yield items, deferred_page, ends_page

    def pages(self) -> AsyncIterator[Page[ItemT, PageT]]:
        """Every page in order, fetching up to ``prefetch`` pages ahead concurrently."""
        return self._pages(self._page_at)

    async def _pages(
        self, page_at: Callable[[int], Awaitable[Page[Any, Any]]]
    ) -> AsyncIterator[Page[Any, Any]]:
        first = await page_at(self._start)
        yield first
        if first.total is None or not first.items:
            return
        # Pages ahead are planned at the size of the first page; `cursor` is where the next
        # page must start, the offset right after the last item yielded.
        stride = len(first.items)
        total = first.total
        cursor = first.offset + len(first.items)
        next_offset = cursor
        ahead: collections.deque[tuple[int, asyncio.Task[Page[Any, Any]]]] = collections.deque()

        def drop_ahead() -> None:
            while ahead:
                ahead.pop()[1].cancel()

        try:
            while True:
                while len(ahead) < max(1, self.prefetch) and next_offset < total:
                    ahead.append((next_offset, asyncio.ensure_future(page_at(next_offset))))
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
