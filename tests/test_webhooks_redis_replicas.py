"""Two webhook receivers in separate processes, one redis-server: each delivery is handled once.

Each replica is a ``WebhookRouter(dedupe=RedisDedupe(url))`` served by aiohttp in its own OS
process; the tool handler counts its runs in Redis, so the count covers both processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from flireo_async.webhooks import sign

from .conftest import free_port
from .test_webhooks_verify import SECRET, tool_calls

REPLICA = textwrap.dedent(
    """
    import asyncio, sys
    import redis.asyncio as aioredis
    from flireo_async.webhooks import RedisDedupe, WebhookRouter

    async def main(port, redis_url, secret, hang):
        counter = aioredis.from_url(redis_url)
        router = WebhookRouter(
            secret, dedupe=RedisDedupe(redis_url, lease=1.0), tool_calls_deadline=20.0
        )

        @router.tool("book")
        async def book(tool):
            runs = await counter.incr("test:runs:" + tool.id)
            await asyncio.sleep(60 if hang else 0.3)
            return {"booking": runs, "replica": port}

        server = await router.start("127.0.0.1", port)
        print("ready", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.close()

    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == "1"))
    """
)


class Replica:
    def __init__(self, redis_url: str, *, hang: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/flireo/webhook"
        self.process = subprocess.Popen(
            [sys.executable, "-c", REPLICA, str(self.port), redis_url, SECRET, "1" if hang else "0"],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def wait_ready(self) -> None:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert "ready" in line, f"replica did not start (exit code {self.process.poll()})"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def replicas(redis_url: str) -> Iterator[list[Replica]]:
    started: list[Replica] = []
    try:
        started.extend(Replica(redis_url) for _ in range(2))
        for replica in started:
            replica.wait_ready()
        yield started
    finally:
        for replica in started:
            replica.stop()


async def send(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]) -> Any:
    async with session.post(url, data=body, headers=headers) as response:
        return response.status, json.loads(await response.text())


async def runs(redis_url: str, tool_call_id: str) -> int:
    client = aioredis.from_url(redis_url)
    try:
        return int(await client.get("test:runs:" + tool_call_id) or 0)
    finally:
        await client.aclose()


def signed_booking(tool_call_id: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(tool_calls((tool_call_id, "book", {"slot": "10:00"}))).encode()
    return body, sign(body, SECRET)


async def test_concurrent_copies_to_two_replicas_run_once(replicas: list[Replica], redis_url: str) -> None:
    body, headers = signed_booking("concurrent")
    async with aiohttp.ClientSession() as session:
        answers = await asyncio.gather(
            *(send(session, replica.url, body, headers) for replica in replicas for _ in range(2))
        )
    assert await runs(redis_url, "concurrent") == 1
    assert len({json.dumps(answer) for answer in answers}) == 1
    status, reply = answers[0]
    assert status == 200
    assert reply["results"][0]["result"]["booking"] == 1


async def test_sequential_copies_to_two_replicas_run_once(replicas: list[Replica], redis_url: str) -> None:
    body, headers = signed_booking("sequential")
    async with aiohttp.ClientSession() as session:
        first = await send(session, replicas[0].url, body, headers)
        second = await send(session, replicas[1].url, body, headers)
        third = await send(session, replicas[0].url, body, headers)
    assert await runs(redis_url, "sequential") == 1
    assert first == second == third
    assert first[1]["results"][0]["result"] == {"booking": 1, "replica": replicas[0].port}


async def test_a_copy_is_handled_after_the_first_replica_dies(redis_url: str) -> None:
    hanging, survivor = Replica(redis_url, hang=True), Replica(redis_url)
    try:
        hanging.wait_ready()
        survivor.wait_ready()
        body, headers = signed_booking("crash")
        async with aiohttp.ClientSession() as session:
            lost = asyncio.create_task(send(session, hanging.url, body, headers))
            while await runs(redis_url, "crash") == 0:
                await asyncio.sleep(0.02)
            hanging.process.send_signal(signal.SIGKILL)
            hanging.process.wait(10)
            with pytest.raises(aiohttp.ClientError):
                await lost
            # The dead replica's claim runs out after its one-second lease; the copy is handled.
            status, reply = await send(session, survivor.url, body, headers)
        assert status == 200
        assert reply["results"][0]["result"] == {"booking": 2, "replica": survivor.port}
    finally:
        hanging.stop()
        survivor.stop()
