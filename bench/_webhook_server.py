"""The receiving side of ``bench/webhooks.py``, run in its own process.

``python bench/_webhook_server.py PORT SECRET`` serves:

- ``POST /flireo/webhook``: a ``WebhookRouter`` with one quick tool, ``lookup_customer``;
- ``POST /baseline``: a bare aiohttp handler that reads the body and answers a reply of the
  same shape without verifying, decoding or dispatching (what any aiohttp endpoint costs);
- ``GET /stats``: this process's CPU seconds so far (``time.process_time()``);
- ``POST /profile/start`` and ``POST /profile/stop``: cProfile around the requests in between;
  ``stop`` answers the top functions by own time.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flireo_async.webhooks import ToolInvocation, WebhookRouter

BASELINE_REPLY = b'{"results":[{"toolCallId":"call_x","result":{"name":"Jan de Vries","tier":"gold"}}]}'


def build_router(secret: str) -> WebhookRouter:
    """The benchmarked router: one quick tool."""
    router = WebhookRouter(secret)

    @router.tool("lookup_customer")
    async def lookup_customer(tool: ToolInvocation) -> dict[str, Any]:
        return {"name": "Jan de Vries", "tier": "gold", "phone": tool.arguments.get("phone")}

    return router


def build(secret: str) -> web.Application:
    router = build_router(secret)
    profiler = cProfile.Profile()

    async def baseline(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=BASELINE_REPLY, content_type="application/json")

    async def stats(_request: web.Request) -> web.Response:
        return web.Response(text=json.dumps({"cpu": time.process_time()}), content_type="application/json")

    async def profile_start(_request: web.Request) -> web.Response:
        profiler.enable()
        return web.Response(status=204)

    async def profile_stop(_request: web.Request) -> web.Response:
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
        return web.Response(text=out.getvalue())

    app = web.Application()
    router.add_to(app)
    app.router.add_post("/baseline", baseline)
    app.router.add_get("/stats", stats)
    app.router.add_post("/profile/start", profile_start)
    app.router.add_post("/profile/stop", profile_stop)
    return app


def main() -> None:
    port, secret = int(sys.argv[1]), sys.argv[2]
    web.run_app(build(secret), host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
