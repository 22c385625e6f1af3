"""The retry table, Retry-After handling, and the DELETE-after-ambiguity rule (aioresponses)."""

from __future__ import annotations

import asyncio
import email.utils
import time
from typing import Any
from unittest import mock

import aiohttp
import pytest
from aioresponses import aioresponses
from yarl import URL

from flireo_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncFlireo,
    InternalServerError,
    RateLimitError,
    _retry,
)

from .clock import VirtualClock
from .conftest import AGENT, BASE, KEY

REAL_BACKOFF = _retry.backoff
OUTBOUND = {"success": True, "call_id": "call-outbound-1", "status": "dialing"}


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Backoff waits are recorded instead of slept, so the table runs fast."""
    attempts: list[int] = []

    def fake_backoff(attempt: int) -> float:
        attempts.append(attempt)
        return 0.0

    monkeypatch.setattr(_retry, "backoff", fake_backoff)
    return attempts


def refused() -> aiohttp.ClientConnectorError:
    return aiohttp.ClientConnectorError(
        mock.Mock(host="api.test.flireo", port=443, ssl=True), ConnectionRefusedError(111, "refused")
    )


# (label, how to call, method, url, success payload)
CALLS: dict[str, tuple[Any, str, str, Any]] = {
    "GET": (lambda c: c.agents.get("a1"), "GET", f"{BASE}/assistants/a1", {"assistant": AGENT}),
    "PATCH": (
        lambda c: c.agents.update("a1", name="x"),
        "PATCH",
        f"{BASE}/assistants/a1",
        {"assistant": AGENT},
    ),
    "DELETE": (lambda c: c.agents.delete("a1"), "DELETE", f"{BASE}/assistants/a1", {"success": True}),
    "POST": (lambda c: c.agents.create(name="x"), "POST", f"{BASE}/assistants", {"assistant": AGENT}),
    "POST outbound": (
        lambda c: c.calls.create(destination="+31612345678", assistant_id="a1"),
        "POST",
        f"{BASE}/calls/outbound",
        OUTBOUND,
    ),
}

FAILURES: dict[str, dict[str, Any]] = {
    "connection refused": {"exception": refused()},
    "timeout": {"exception": asyncio.TimeoutError()},
    "dropped connection": {"exception": aiohttp.ServerDisconnectedError()},
    "408": {"status": 408, "payload": {"error": "Request timeout"}},
    "429": {"status": 429, "payload": {"error": "Rate limit exceeded"}, "headers": {"Retry-After": "0"}},
    "500": {"status": 500, "payload": {"error": "Internal"}},
    "502": {"status": 502, "body": "<html>bad gateway</html>"},
    "503": {"status": 503, "payload": {"error": "Unavailable"}},
    "504": {"status": 504, "payload": {"error": "Gateway timeout"}},
}

# Which failures each kind of request retries (idempotent, not idempotent, the outbound dial).
RETRIED = {
    "GET": set(FAILURES),
    "PATCH": set(FAILURES),
    "DELETE": set(FAILURES),
    "POST": {"429", "connection refused"},
    "POST outbound": {"429", "connection refused"},
}


def count(m: aioresponses, method: str, url: str) -> int:
    return len(m.requests.get((method, URL(url)), []))


@pytest.mark.parametrize("kind", list(CALLS))
@pytest.mark.parametrize("failure", list(FAILURES))
async def test_retry_table(kind: str, failure: str, mocked: aioresponses, client: AsyncFlireo) -> None:
    call, method, url, payload = CALLS[kind]
    mocked.add(url, method=method, **FAILURES[failure])
    mocked.add(url, method=method, status=200, payload=payload)
    if failure in RETRIED[kind]:
        await call(client)
        assert count(mocked, method, url) == 2
    else:
        with pytest.raises((APIConnectionError, InternalServerError, Exception)) as info:
            await call(client)
        assert count(mocked, method, url) == 1, "an unsafe request must not be repeated"
        if failure in ("timeout", "dropped connection"):
            assert isinstance(info.value, APIConnectionError)
            assert info.value.sent is True
        if failure == "timeout":
            assert isinstance(info.value, APITimeoutError)


async def test_connection_refused_is_marked_not_sent(mocked: aioresponses) -> None:
    url = f"{BASE}/calls/outbound"
    for _ in range(3):
        mocked.post(url, exception=refused())
    async with AsyncFlireo(api_key=KEY, base_url=BASE, rate_limit=None, max_retries=2) as c:
        with pytest.raises(APIConnectionError) as info:
            await c.calls.create(destination="+31612345678", assistant_id="a1")
    assert info.value.sent is False
    assert count(mocked, "POST", url) == 3


async def test_retries_stop_after_max_retries(mocked: aioresponses, no_backoff: list[int]) -> None:
    url = f"{BASE}/assistants/a1"
    for _ in range(5):
        mocked.get(url, status=503, payload={"error": "down"})
    async with AsyncFlireo(api_key=KEY, base_url=BASE, rate_limit=None, max_retries=2) as c:
        with pytest.raises(InternalServerError) as info:
            await c.agents.get("a1")
    assert info.value.status == 503
    assert count(mocked, "GET", url) == 3
    assert no_backoff == [0, 1], "exponential backoff grows with the attempt number"


def test_real_backoff_bounds() -> None:
    for attempt in range(8):
        values = [REAL_BACKOFF(attempt) for _ in range(300)]
        bound = min(8.0, 0.5 * 2**attempt)
        assert all(0 <= v <= bound for v in values)
        assert max(values) > bound * 0.6, "full jitter spreads over the whole range"
        assert min(values) < bound * 0.4


async def test_delete_after_ambiguous_attempt_treats_404_as_deleted(
    mocked: aioresponses, client: AsyncFlireo
) -> None:
    url = f"{BASE}/assistants/a1"
    mocked.delete(url, exception=asyncio.TimeoutError())
    mocked.delete(url, status=404, payload={"error": "Not found"})
    await client.agents.delete("a1")  # a 404 after a lost response means it is gone
    assert count(mocked, "DELETE", url) == 2


async def test_plain_404_on_delete_still_raises(mocked: aioresponses, client: AsyncFlireo) -> None:
    from flireo_async import NotFoundError

    mocked.delete(f"{BASE}/assistants/a1", status=404, payload={"error": "Not found"})
    with pytest.raises(NotFoundError):
        await client.agents.delete("a1")


async def test_retry_after_seconds_is_honoured(mocked: aioresponses) -> None:
    url = f"{BASE}/assistants/a1"
    mocked.get(url, status=429, headers={"Retry-After": "1"}, payload={"error": "Rate limit exceeded"})
    mocked.get(url, payload={"assistant": AGENT})
    clock = VirtualClock()
    async with AsyncFlireo(api_key=KEY, base_url=BASE, rate_limit=None, clock=clock) as client:
        await client.agents.get("a1")
    assert clock.sleeps == [1.0]


async def test_retry_after_http_date_is_honoured(mocked: aioresponses, client: AsyncFlireo) -> None:
    url = f"{BASE}/assistants/a1"
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    mocked.get(url, status=429, headers={"Retry-After": when}, payload={"error": "Rate limit exceeded"})
    mocked.get(url, payload={"assistant": AGENT})
    clock = VirtualClock()
    async with AsyncFlireo(api_key=KEY, base_url=BASE, rate_limit=None, clock=clock) as client:
        await client.agents.get("a1")
    # HTTP dates have one-second resolution: the wait is between 1 and 2 seconds.
    assert len(clock.sleeps) == 1
    assert 0.9 <= clock.sleeps[0] <= 2.0


def test_parse_retry_after_forms() -> None:
    assert _retry.parse_retry_after("45") == 45.0
    assert _retry.parse_retry_after(None) is None
    assert _retry.parse_retry_after("soon") is None
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= (_retry.parse_retry_after(future) or 0) <= 30


async def test_retry_after_past_the_cap_raises_at_once(mocked: aioresponses) -> None:
    url = f"{BASE}/assistants/a1"
    mocked.get(
        url,
        status=429,
        headers={"Retry-After": "120"},
        payload={"error": "Rate limit exceeded", "retry_after": 120},
    )
    mocked.get(url, payload={"assistant": AGENT})
    clock = VirtualClock()
    async with AsyncFlireo(api_key=KEY, base_url=BASE, rate_limit=None, max_retry_wait=10, clock=clock) as c:
        with pytest.raises(RateLimitError) as info:
            await c.agents.get("a1")
    assert clock.sleeps == []  # raised at once
    assert info.value.retry_after == 120
    assert count(mocked, "GET", url) == 1


async def test_retry_after_from_body_when_header_missing(mocked: aioresponses) -> None:
    url = f"{BASE}/assistants/a1"
    mocked.get(url, status=429, payload={"error": "Rate limit exceeded", "retry_after": 45})
    async with AsyncFlireo(api_key=KEY, base_url=BASE, rate_limit=None, max_retries=0) as c:
        with pytest.raises(RateLimitError) as info:
            await c.agents.get("a1")
    assert info.value.retry_after == 45
