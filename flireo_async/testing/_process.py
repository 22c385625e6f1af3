"""FakeFlireo in a child process, for tests and benchmarks of code that runs in many processes.

The fake gets a core of its own (it never competes with the workers under test for an
interpreter), and its request record stays readable::

    with FakeProcess(rate_limit=600, speed=100) as fake:
        ...  # start workers against fake.url / fake.api_key
        records = fake.records()  # every request the fake received, as dicts

The child reads one command per line on stdin (``records``, ``stop``) and answers on stdout
with one line of JSON. Closing stdin (the parent died) stops it too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
from types import TracebackType
from typing import Any

__all__ = ["FakeProcess", "busiest_window"]


class FakeProcess:
    """A :class:`~flireo_async.testing.FakeFlireo` served by a child process.

    ``options`` go to the ``FakeFlireo`` constructor and must be JSON values (numbers, strings,
    booleans, ``None``). Use it as a context manager: the child is stopped on exit, and killed
    if it does not stop within ``stop_timeout`` seconds.
    """

    def __init__(self, *, stop_timeout: float = 10.0, **options: Any) -> None:
        self.options = options
        self.stop_timeout = stop_timeout
        self.url = ""
        self.api_key = ""
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> FakeProcess:
        """Start the child and wait until it listens."""
        self._proc = subprocess.Popen(  # noqa: S603 - our own module, run by this interpreter
            [sys.executable, "-m", "flireo_async.testing._process", json.dumps(self.options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            hello = self._read()
        except BaseException:
            self.kill()
            raise
        self.url, self.api_key = hello["url"], hello["api_key"]
        return self

    def records(self) -> list[dict[str, Any]]:
        """Every request the fake has received: ``method``, ``path``, ``query``, ``body``,
        ``status``, ``at`` (Unix time), ``operation_id`` and ``fault``."""
        self._send("records")
        records: list[dict[str, Any]] = self._read()
        return records

    def stop(self) -> None:
        """Ask the child to stop; kill it when it does not."""
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.poll() is None:
                self._send("stop")
                proc.wait(self.stop_timeout)
        except (OSError, subprocess.TimeoutExpired):
            pass
        finally:
            self.kill()

    def kill(self) -> None:
        """Kill the child at once (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()

    def _send(self, command: str) -> None:
        assert self._proc is not None, "not started"
        assert self._proc.stdin is not None
        self._proc.stdin.write(command + "\n")
        self._proc.stdin.flush()

    def _read(self) -> Any:
        assert self._proc is not None, "not started"
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fake server process exited (status {self._proc.poll()})")
        return json.loads(line)

    def __enter__(self) -> FakeProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"FakeProcess(url={self.url!r})"


def busiest_window(times: list[float], seconds: float) -> int:
    """The most events in any window of ``seconds`` (a sliding window over the times given),
    for example request arrivals from :meth:`FakeProcess.records` against a rate limit."""
    ordered = sorted(times)
    best = start = 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


async def _serve(options: dict[str, Any]) -> None:
    from ._server import FakeFlireo

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with FakeFlireo(**options) as fake:
        print(json.dumps({"url": fake.url, "api_key": fake.api_key}), flush=True)
        while True:
            line = (await reader.readline()).decode().strip()
            if line == "records":
                rows = [dataclasses.asdict(record) for record in fake.requests]
                print(json.dumps(rows, default=str), flush=True)
            elif not line or line == "stop":
                return


if __name__ == "__main__":
    asyncio.run(_serve(json.loads(sys.argv[1])))
