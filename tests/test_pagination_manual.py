"""Paging by hand (``page.has_next_page()`` / ``await page.next_page()``) and the reprs of
paginators and pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import pytest
from aiohttp import web

from flireo_async import AsyncFlireo, FlireoError

from .conftest import KEY
from .recording_server import RecordingServer, recording_server

CALLS = [{"id": f"call-{i}", "status": "ended"} for i in range(5)]


def pages_of(items: list[dict[str, Any]], *, paginated: bool = True) -> Any:
    async def handle(request: web.Request) -> web.Response:
        offset = int(request.query.get("offset", "0"))
        limit = int(request.query.get("limit", "100"))
        body: dict[str, Any] = {"calls": items[offset : offset + limit]}
        if paginated:
            body["pagination"] = {"total": len(items), "limit": limit, "offset": offset}
        return web.json_response(body)

    return handle


@pytest.fixture
async def server() -> AsyncIterator[RecordingServer]:
    async with recording_server(listCalls=pages_of(CALLS)) as s:
        yield s


@pytest.fixture
async def client(server: RecordingServer) -> AsyncIterator[AsyncFlireo]:
    async with AsyncFlireo(api_key=KEY, base_url=server.url, rate_limit=None) as c:
        yield c


async def test_paging_by_hand(server: RecordingServer, client: AsyncFlireo) -> None:
    page = await client.calls.list(limit=2, extra_headers={"X-Job": "manual"})
    seen = [c.id for c in page.items]
    while page.has_next_page():
        page = await page.next_page()
        seen += [c.id for c in page.items]
    assert seen == [c["id"] for c in CALLS]
    assert page.offset == 4
    assert not page.has_next_page()
    with pytest.raises(FlireoError, match="no next page after offset 4"):
        await page.next_page()
    # Each next page is asked for with the same arguments and options, right after the last item.
    assert [(r.query.get("offset"), r.query["limit"]) for r in server.requests] == [
        (None, "2"),
        ("2", "2"),
        ("4", "2"),
    ]
    assert {r.headers["X-Job"] for r in server.requests} == {"manual"}


async def test_a_list_without_pagination_or_an_empty_page_has_no_next_page() -> None:
    async with (
        recording_server(listCalls=pages_of(CALLS, paginated=False)) as complete,
        AsyncFlireo(api_key=KEY, base_url=complete.url, rate_limit=None) as client,
    ):
        page = await client.calls.list(limit=2)
        assert len(page.items) == 2
        assert page.total is None
        assert not page.has_next_page()

    async def empty(_: web.Request) -> web.Response:
        return web.json_response({"calls": [], "pagination": {"total": 10, "limit": 2, "offset": 0}})

    async with (
        recording_server(listCalls=empty) as hollow,
        AsyncFlireo(api_key=KEY, base_url=hollow.url, rate_limit=None) as client,
    ):
        page = await client.calls.list(limit=2)
        assert not page.has_next_page()  # an empty page ends the list, whatever `total` says
        assert repr(page) == "Page(offset=0, items=[0], total=10, has_next_page=False)"


async def test_paginator_and_page_reprs(client: AsyncFlireo) -> None:
    since = datetime(2026, 1, 1, tzinfo=timezone.utc)
    paginator = client.calls.list(limit=2, status="ended", start_date=since)
    assert repr(paginator) == (
        "AsyncPaginator(listCalls, limit=2, status='ended', start_date=2026-01-01T00:00:00+00:00, prefetch=2)"
    )
    assert repr(client.calls.list()) == "AsyncPaginator(listCalls, prefetch=2)"
    page = await paginator
    assert repr(page) == "Page(offset=0, items=[2 Call], total=5, has_next_page=True)"
    last = await (await page.next_page()).next_page()
    assert repr(last) == "Page(offset=4, items=[1 Call], total=5, has_next_page=False)"
