"""Pytest fixtures for testing code that uses flireo-async against the fake server.

Enable with ``pytest_plugins = ["flireo_async.testing.pytest_plugin"]`` (or through the
package's ``pytest11`` entry point). Fixtures (function scope, async; need pytest-asyncio):

- ``flireo_fake``: a started :class:`~flireo_async.testing.FakeFlireo`. Defaults for tests:
  ``speed=100`` and ``rate_limit=None``; change them with
  ``@pytest.mark.flireo_fake(rate_limit=100, failure_share=0.2)`` or by overriding the
  ``flireo_fake_options`` fixture.
- ``flireo_client``: an :class:`~flireo_async.AsyncFlireo` bound to it (client-side pacing off,
  ``strict_responses=True``: the fake answers exactly as the spec says, so any gap is a bug).

This module imports nothing heavy at import time, so merely having the plugin registered
costs nothing in test suites that do not use it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest

if TYPE_CHECKING:
    from flireo_async import AsyncFlireo
    from flireo_async.testing import FakeFlireo

__all__ = ["flireo_fake", "flireo_fake_options", "flireo_client", "FIXTURE_DEFAULTS"]

FIXTURE_DEFAULTS: dict[str, Any] = {"speed": 100.0, "rate_limit": None}
"""Constructor arguments the ``flireo_fake`` fixture starts from."""

F = TypeVar("F", bound=Callable[..., Any])

try:
    import pytest_asyncio

    _fixture: Any = pytest_asyncio.fixture
except ImportError:  # pragma: no cover - without pytest-asyncio only pytest's own fixture exists
    _fixture = pytest.fixture


def _async_fixture(func: F) -> F:
    """pytest-asyncio's fixture decorator (works in its strict and auto modes)."""
    return cast(F, _fixture(func))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "flireo_fake(**options): FakeFlireo constructor arguments for the flireo_fake fixture"
    )


@pytest.fixture
def flireo_fake_options() -> dict[str, Any]:
    """Extra ``FakeFlireo`` arguments for ``flireo_fake``; override it in a conftest or module."""
    return {}


@_async_fixture
async def flireo_fake(
    request: pytest.FixtureRequest, flireo_fake_options: dict[str, Any]
) -> AsyncIterator[FakeFlireo]:
    """A started fake Flireo server, torn down after the test."""
    from flireo_async.testing import FakeFlireo

    options = {**FIXTURE_DEFAULTS, **flireo_fake_options}
    marker = request.node.get_closest_marker("flireo_fake")
    if marker is not None:
        options.update(marker.kwargs)
    async with FakeFlireo(**options) as fake:
        yield fake


@_async_fixture
async def flireo_client(flireo_fake: FakeFlireo) -> AsyncIterator[AsyncFlireo]:
    """An ``AsyncFlireo`` for ``flireo_fake`` (``rate_limit=None``: no client-side pacing;
    ``strict_responses=True``: a response that leaves out a required field fails the call)."""
    from flireo_async import AsyncFlireo

    async with AsyncFlireo(
        api_key=flireo_fake.api_key, base_url=flireo_fake.url, rate_limit=None, strict_responses=True
    ) as client:
        yield client
