"""Shared helpers for the benchmark scripts."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server(*args: str) -> Iterator[str]:
    """Start ``bench/_server.py`` in its own process; yield its base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "_server.py"), str(port), *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "ready" not in line:
            raise RuntimeError("benchmark server did not start")
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        proc.terminate()
        proc.wait(10)


async def count_pages_ahead(
    page: Callable[[int], Awaitable[Sequence[Any]]], rows: int, page_size: int, prefetch: int
) -> float:
    """Fetch ``rows`` rows by offset, ``prefetch`` pages ahead, touching every row; the seconds
    it took. How the raw and generated peers page (standard library only: the generated peer
    runs in a venv without aiohttp)."""
    start = time.perf_counter()
    count = 0
    offsets = iter(range(0, rows, page_size))
    ahead = [asyncio.ensure_future(page(o)) for o in itertools.islice(offsets, prefetch)]
    while ahead:
        items = await ahead.pop(0)
        following = next(offsets, None)
        if following is not None:
            ahead.append(asyncio.ensure_future(page(following)))
        for _item in items:
            count += 1
    assert count == rows, count
    return time.perf_counter() - start


def run_for_json(command: Sequence[str]) -> Any:
    """Run a child process; the JSON value on the last line it prints."""
    out = subprocess.run(list(command), check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])
