"""Shared helpers for the benchmark scripts."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

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
