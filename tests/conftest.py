"""Shared fixtures: a client against a mocked base URL, and spec helpers."""

from __future__ import annotations

import importlib.util
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aioresponses import aioresponses

from flireo_async import AsyncFlireo
from flireo_async.testing import RedisServer, load_spec

# A shell that starts a job in the background (`make check &`, some CI runners) starts it with
# SIGINT ignored, and an ignored signal stays ignored in every child: the tests that press
# Ctrl-C on a `flireo` subprocess would then wait for nothing. A Python-level handler is reset
# to the default at exec, so children again turn Ctrl-C into KeyboardInterrupt.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

SPEC = load_spec()

BASE = "https://api.test.flireo/api/v1"
AGENT: dict[str, Any] = {
    "id": "a1",
    "name": "Support",
    "is_active": True,
    "stt_config": {"provider": "deepgram", "model": "nova-3-general", "language": "nl"},
    "llm_config": {"provider": "openai", "model": "gpt-4o-mini"},
    "tts_config": None,
    "created_at": "2026-01-07T10:00:00.000Z",
    "updated_at": "2026-01-07T10:00:00.000Z",
}
"""A minimal agent as the API sends it (the always-present fields)."""
KEY = "fl_test_secret_key_123"


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with aioresponses() as m:
        yield m


@pytest.fixture
async def client() -> AsyncIterator[AsyncFlireo]:
    async with AsyncFlireo(api_key=KEY, base_url=BASE, rate_limit=None) as c:
        yield c


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) for every operation of the spec."""
    out = []
    for path, item in SPEC["paths"].items():
        for method in ("get", "post", "patch", "delete"):
            if method in item:
                out.append((method.upper(), path, item[method]))
    return out


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = SPEC["components"]["schemas"][name]
    return schema


def ref_name(schema: dict[str, Any]) -> str:
    return str(schema["$ref"].rsplit("/", 1)[-1])


def import_file(path: Path, name: str) -> ModuleType:
    """The module in ``path`` (a script outside the package, e.g. an example), imported as ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    """A loopback port nothing listens on (for "unreachable" tests and servers started later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server for the session (no persistence); stopped even when tests fail."""
    server = RedisServer()
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of the session's redis-server, emptied for this test."""
    redis_server.flush()
    return redis_server.url
