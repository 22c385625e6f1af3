"""Run inside the temporary venv of ``bench/peers.py --with-generated``: the same GET and usage
export through a client that openapi-python-client generated from our spec (httpx underneath).

``python _generated_peer.py PACKAGE_DIR BASE_URL REQUESTS ROWS ROUNDS`` prints one JSON object
with the best times: ``{"get_1": s, "get_50": s, "export": s}``.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from _util import count_pages_ahead  # this script's folder is on sys.path when it runs

AGENT_ID = "3f6d2a9e-8c41-4b7a-9e2d-5a1c7f0b6e13"
PAGE = 1000
PREFETCH = 4


def main() -> None:
    package_dir, base, requests, rows, rounds = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
    sys.path.insert(0, str(Path(package_dir).parent))
    name = Path(package_dir).name
    client_module: Any = importlib.import_module(f"{name}.client")
    get_agent: Any = importlib.import_module(f"{name}.api.agents.get_agent")
    get_usage: Any = importlib.import_module(f"{name}.api.usage.get_usage")

    async def gets(concurrency: int) -> float:
        import httpx

        limits = httpx.Limits(max_connections=None, max_keepalive_connections=concurrency)
        async with client_module.AuthenticatedClient(
            base_url=base, token="bench", httpx_args={"limits": limits}
        ) as client:
            queue = iter(range(requests))

            async def worker() -> None:
                for _ in queue:
                    envelope = await get_agent.asyncio(AGENT_ID, client=client)
                    assert envelope is not None
                    assert envelope.assistant.id == AGENT_ID, envelope

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.perf_counter() - start

    async def export() -> float:
        async with client_module.AuthenticatedClient(base_url=base, token="bench") as client:

            async def page(offset: int) -> list[Any]:
                result = await get_usage.asyncio(client=client, limit=PAGE, offset=offset)
                return list(result.logs)

            return await count_pages_ahead(page, rows, PAGE, PREFETCH)

    async def run() -> dict[str, float]:
        await gets(10)
        best = {"get_1": float("inf"), "get_50": float("inf"), "export": float("inf")}
        for _ in range(rounds):
            best["get_1"] = min(best["get_1"], await gets(1))
            best["get_50"] = min(best["get_50"], await gets(50))
            best["export"] = min(best["export"], await export())
        return best

    print(json.dumps(asyncio.run(run())))


if __name__ == "__main__":
    main()
