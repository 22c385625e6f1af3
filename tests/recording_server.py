"""A loopback aiohttp server that answers every operation of the spec with its example response
and records each request it receives (method, path, query, headers, JSON body)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
from aiohttp import web
from multidict import CIMultiDictProxy

from .conftest import operations
from .test_spec import success_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@attrs.frozen
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDictProxy[str]
    body: Any
    """The decoded JSON body, or None when none was sent."""


@attrs.define
class RecordingServer:
    """``url`` is the API base URL; ``requests`` fills up as requests arrive."""

    url: str = ""
    requests: list[Recorded] = attrs.Factory(list)
    overrides: dict[str, Handler] = attrs.Factory(dict)
    """Handlers by ``"METHOD /path/template"`` that replace the example answer."""

    def last(self) -> Recorded:
        assert self.requests, "the server received no request"
        return self.requests[-1]


@asynccontextmanager
async def recording_server(**overrides: Handler) -> AsyncIterator[RecordingServer]:
    """Serve the spec's examples on 127.0.0.1; ``overrides`` are keyed by operationId."""
    server = RecordingServer()

    def handler_for(op_id: str, status: int, example: Any) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            raw = await request.read()
            server.requests.append(
                Recorded(
                    request.method,
                    request.path,
                    dict(request.query),
                    request.headers,
                    json.loads(raw) if raw else None,
                )
            )
            if op_id in overrides:
                return await overrides[op_id](request)
            if example is None:
                return web.Response(status=status)
            return web.json_response(example, status=status)

        return handle

    app = web.Application()
    for method, path, op in operations():
        status, example = success_response(op)
        app.router.add_route(method, "/api/v1" + path, handler_for(op["operationId"], status, example))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/v1"
    try:
        yield server
    finally:
        await runner.cleanup()
