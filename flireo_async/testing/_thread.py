"""Run a :class:`FakeFlireo` on its own event loop in a background thread.

For synchronous code that talks to the fake over HTTP (``requests``, schemathesis, a CLI
under test): the server keeps serving while the calling thread blocks.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

from ._server import FakeFlireo

__all__ = ["BackgroundFake", "run_in_thread"]

T = TypeVar("T")


class BackgroundFake:
    """``with run_in_thread(speed=100) as fake:`` — a started fake served from a daemon thread.

    Use :meth:`call` to run a coroutine on the fake's loop (e.g.
    ``bg.call(fake.wait_calls_finished())``). Reading ``fake.state`` from the calling thread is
    fine for assertions; change it through :meth:`call` while calls are being simulated.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="flireo-fake", daemon=True)
        self.fake: FakeFlireo | None = None

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 60.0) -> T:
        """Run ``coro`` on the fake's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def __enter__(self) -> FakeFlireo:
        self._thread.start()

        async def start() -> FakeFlireo:
            return await FakeFlireo(**self._kwargs).start()

        self.fake = self.call(start())
        return self.fake

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self.fake is not None:
                self.call(self.fake.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()


def run_in_thread(**kwargs: Any) -> BackgroundFake:
    """A context manager that starts ``FakeFlireo(**kwargs)`` in a background thread."""
    return BackgroundFake(**kwargs)
