"""The session layer against a real aiohttp server on loopback: pacing, the shared 429
cool-down, the concurrency gate, pagination with prefetch, raw responses, configuration."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from flireo_async import (
    AsyncFlireo,
    FlireoError,
    Page,
    RateLimitError,
    RequestValidationError,
)
from flireo_async._generated.models import UsageList
from flireo_async._ratelimit import TokenBucket
from tests.typed import present

from .clock import VirtualClock
from .conftest import AGENT

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[dict[str, Handler]], Awaitable[str]]]:
    """Start an aiohttp app with the given GET routes; return its base URL."""
    runners: list[web.AppRunner] = []

    async def start(routes: dict[str, Handler]) -> str:
        app = web.Application()
        for path, handler in routes.items():
            method, _, route = path.partition(" ")
            app.router.add_route(method, "/api/v1" + route, handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/api/v1"

    yield start
    for runner in runners:
        await runner.cleanup()


async def agent_handler(_: web.Request) -> web.Response:
    return web.json_response({"assistant": AGENT})


# -- pacing ------------------------------------------------------------------------------------


async def test_pacing_spreads_requests_over_the_allowed_rate(serve: Any) -> None:
    base = await serve({"GET /assistants/{id}": agent_handler})
    # 600/min: a burst of 30, then 9.5 per second: 50 requests take (50 - 30) / 9.5 s.
    clock = VirtualClock()
    async with AsyncFlireo(api_key="k", base_url=base, rate_limit=600, clock=clock) as client:
        await asyncio.gather(*(client.agents.get("a1") for _ in range(50)))
    assert (50 - 30) / 9.5 - 1e-6 <= clock.elapsed <= (50 - 30) / 9.5 + 0.11


async def test_no_pacing_when_rate_limit_is_none(serve: Any) -> None:
    base = await serve({"GET /assistants/{id}": agent_handler})
    clock = VirtualClock()
    async with AsyncFlireo(api_key="k", base_url=base, rate_limit=None, clock=clock) as client:
        await asyncio.gather(*(client.agents.get("a1") for _ in range(50)))
    assert clock.sleeps == []


async def test_remaining_zero_header_makes_the_client_wait_for_reset(serve: Any) -> None:
    calls: list[float] = []
    clock = VirtualClock()

    async def handler(_: web.Request) -> web.Response:
        calls.append(clock.monotonic())
        remaining = "0" if len(calls) == 1 else "50"
        reset = str(int(time.time()) + 2)
        return web.json_response(
            {"assistant": AGENT},
            headers={
                "X-RateLimit-Limit": "100",
                "X-RateLimit-Remaining": remaining,
                "X-RateLimit-Reset": reset,
            },
        )

    base = await serve({"GET /assistants/{id}": handler})
    async with AsyncFlireo(api_key="k", base_url=base, rate_limit=100, clock=clock) as client:
        await client.agents.get("a1")
        await client.agents.get("a1")
    assert 0.9 <= calls[1] - calls[0] <= 2.0  # until Reset, two seconds ahead at most


async def test_a_429_cools_down_every_task_of_the_client(serve: Any) -> None:
    times: list[float] = []
    first = True
    clock = VirtualClock()

    async def handler(_: web.Request) -> web.Response:
        nonlocal first
        times.append(clock.monotonic())
        if first:
            first = False
            return web.json_response(
                {"error": "Rate limit exceeded", "retry_after": 1}, status=429, headers={"Retry-After": "1"}
            )
        return web.json_response({"assistant": AGENT})

    base = await serve({"GET /assistants/{id}": handler})
    async with AsyncFlireo(
        api_key="k", base_url=base, rate_limit=None, max_concurrency=1, clock=clock
    ) as client:
        # One slot: the first request gets the 429; the other nine were queued behind it and
        # must all wait out the same Retry-After instead of hitting the server at once.
        await asyncio.gather(*(client.agents.get("a1") for _ in range(10)))
    assert len(times) == 11
    assert all(t - times[0] >= 0.95 for t in times[1:]), "no request may go out during the cool-down"


@pytest.mark.parametrize("start", [-2.0, 0.0, 1000.0])
async def test_an_unpaced_bucket_grants_at_once_except_during_a_cool_down(start: float) -> None:
    clock = VirtualClock(start)
    bucket = TokenBucket(None, clock=clock.monotonic, sleep=clock.sleep)
    assert bucket.try_acquire()
    assert bucket.cool_down_left() == 0.0
    bucket.cool_down(2.0)
    assert not bucket.try_acquire()
    assert bucket.cool_down_left() == 2.0
    assert await bucket.acquire() == 2.0
    assert bucket.try_acquire()
    assert bucket.cool_down_left() == 0.0


async def test_control_commands_are_paced_per_call(serve: Any) -> None:
    hits: dict[str, list[float]] = {}
    clock = VirtualClock()

    async def handler(request: web.Request) -> web.Response:
        hits.setdefault(request.match_info["id"], []).append(clock.monotonic())
        return web.json_response({"success": True})

    base = await serve({"POST /calls/{id}/control": handler})
    async with AsyncFlireo(api_key="k", base_url=base, rate_limit=None, clock=clock) as client:
        # Ten commands per call go out at once; two different calls do not share a window.
        await asyncio.gather(*(client.calls.say(f"call-{i % 2}", "hi") for i in range(20)))
        assert clock.sleeps == []
        assert {k: len(v) for k, v in hits.items()} == {"call-0": 10, "call-1": 10}
        # The 11th command on one call waits until the first leaves the 60-second window.
        await client.calls.end("call-0")
    assert clock.sleeps == [60.0]
    assert hits["call-0"][-1] - hits["call-0"][0] == 60.0


# -- concurrency -----------------------------------------------------------------------------


async def test_concurrency_cap_holds_in_flight_requests(serve: Any) -> None:
    in_flight = 0
    peak = 0

    async def handler(_: web.Request) -> web.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return web.json_response({"assistant": AGENT})

    base = await serve({"GET /assistants/{id}": handler})
    async with AsyncFlireo(api_key="k", base_url=base, rate_limit=None, max_concurrency=4) as client:
        await asyncio.gather(*(client.agents.get("a1") for _ in range(40)))
    assert peak == 4


# -- pagination ------------------------------------------------------------------------------


def usage_server(total: int, seen: list[tuple[int, int]], delay: float = 0.0) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "100"))
        offset = int(request.query.get("offset", "0"))
        seen.append((offset, limit))
        if delay:
            await asyncio.sleep(delay)
        logs = [
            {"id": f"log-{i}", "duration_sec": i, "created_at": "2026-01-07T10:00:00.000Z"}
            for i in range(offset, min(offset + limit, total))
        ]
        return web.json_response(
            {
                "logs": logs,
                "pagination": {"total": total, "limit": limit, "offset": offset},
                "summary": {
                    "total_calls": total,
                    "total_duration_seconds": total,
                    "total_duration_minutes": 1,
                },
            }
        )

    return handler


async def test_pagination_over_2500_logs_with_prefetch(serve: Any) -> None:
    seen: list[tuple[int, int]] = []
    base = await serve({"GET /usage": usage_server(2500, seen, delay=0.01)})
    async with AsyncFlireo(api_key="k", base_url=base, rate_limit=None, prefetch=3) as client:
        ids = [log.id async for log in client.usage.list(limit=100)]
    assert ids == [f"log-{i}" for i in range(2500)], "every log once, in order"
    offsets = [offset for offset, _ in seen]
    assert sorted(offsets) == list(range(0, 2500, 100)), "each page requested exactly once"


async def test_prefetch_overlaps_page_requests(serve: Any) -> None:
    seen: list[tuple[int, int]] = []
    pages = usage_server(2000, seen)
    in_flight = peak = 0

    async def slow_pages(request: web.Request) -> web.StreamResponse:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)  # long enough for the paginator to ask for the next pages
        in_flight -= 1
        return await pages(request)

    base = await serve({"GET /usage": slow_pages})
    async with AsyncFlireo(api_key="k", base_url=base, rate_limit=None, prefetch=4) as client:
        count = sum([1 async for _ in client.usage.list(limit=100)])
    assert count == 2000
    assert peak == 4, "four pages are requested at once, not one after the other"


async def test_paginator_memory_holds_at_most_prefetch_plus_one_pages(serve: Any) -> None:
    seen: list[tuple[int, int]] = []
    base = await serve({"GET /usage": usage_server(3000, seen)})
    refs: list[weakref.ref[Any]] = []
    peak = 0
    async with AsyncFlireo(api_key="k", base_url=base, rate_limit=None, prefetch=2) as client:
        async for page in client.usage.list(limit=100).pages():
            refs.append(weakref.ref(page.response))
            del page
            await asyncio.sleep(0.01)  # let prefetched pages arrive
            # Pages hold no reference cycles, so one is freed the moment its last reference
            # goes: no collection is needed to see it gone.
            peak = max(peak, sum(ref() is not None for ref in refs))
    assert len(seen) == 30
    assert peak <= 3, f"{peak} pages alive at once with prefetch=2"


async def test_awaiting_the_paginator_gives_the_first_page_with_summary(serve: Any) -> None:
    seen: list[tuple[int, int]] = []
    base = await serve({"GET /usage": usage_server(250, seen)})
    async with AsyncFlireo(api_key="k", base_url=base, rate_limit=None) as client:
        page = await client.usage.list(limit=100, offset=100)
    assert isinstance(page, Page)
    assert isinstance(page.response, UsageList)
    assert [log.id for log in page.items][:2] == ["log-100", "log-101"]
    assert present(page.pagination).total == 250
    assert present(page.response.summary).total_calls == 250
    assert seen == [(100, 100)]


async def test_pagination_stops_when_total_shrinks(serve: Any) -> None:
    requests: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        offset = int(request.query.get("offset", "0"))
        requests.append(offset)
        total = 500 if offset == 0 else 250  # rows deleted while we page
        logs = [
            {"id": f"log-{i}", "duration_sec": 1, "created_at": "2026-01-07T10:00:00.000Z"}
            for i in range(offset, min(offset + 100, total))
        ]
        return web.json_response(
            {"logs": logs, "pagination": {"total": total, "limit": 100, "offset": offset}, "summary": {}}
        )

    base = await serve({"GET /usage": handler})
    async with AsyncFlireo(api_key="k", base_url=base, rate_limit=None, prefetch=1) as client:
        ids = [log.id async for log in client.usage.list(limit=100)]
    assert ids == [f"log-{i}" for i in range(250)]
    assert max(requests) < 400


async def test_breaking_out_cancels_prefetched_pages(serve: Any) -> None:
    seen: list[tuple[int, int]] = []
    base = await serve({"GET /usage": usage_server(10_000, seen, delay=0.05)})
    async with AsyncFlireo(api_key="k", base_url=base, rate_limit=None, prefetch=3) as client:
        paginator = client.usage.list(limit=100)
        pages = paginator.pages()
        async for page in pages:
            if page.offset >= 200:
                break
        await pages.aclose()  # type: ignore[attr-defined]
        await asyncio.sleep(0.2)
    assert len(seen) <= 3 + 3


# -- raw responses and configuration --------------------------------------------------------


async def test_raw_response_exposes_status_headers_and_rate_limit(serve: Any) -> None:
    async def handler(_: web.Request) -> web.Response:
        return web.json_response(
            {"assistant": AGENT},
            headers={
                "X-Request-Id": "req-1",
                "X-RateLimit-Limit": "100",
                "X-RateLimit-Remaining": "99",
                "X-RateLimit-Reset": "1702479600",
            },
        )

    base = await serve({"GET /assistants/{id}": handler})
    async with AsyncFlireo(api_key="k", base_url=base, rate_limit=None) as client:
        raw = await client.with_raw_response.agents.get("a1")
    assert raw.status == 200
    assert raw.request_id == "req-1"
    assert (raw.rate_limit.limit, raw.rate_limit.remaining, raw.rate_limit.reset) == (100, 99, 1702479600)
    assert raw.parsed.name == "Support"
    assert raw.headers["X-Request-Id"] == "req-1"


async def test_with_options_overrides_for_one_call(serve: Any) -> None:
    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(0.5)
        return web.json_response({"assistant": AGENT})

    base = await serve({"GET /assistants/{id}": slow})
    from flireo_async import APITimeoutError

    async with AsyncFlireo(api_key="k", base_url=base, rate_limit=None) as client:
        fast = client.with_options(timeout=0.1, max_retries=0)
        assert fast.config.timeout == 0.1
        assert client.config.timeout == 30.0
        with pytest.raises(APITimeoutError):
            await fast.agents.get("a1")
        assert (await client.agents.get("a1")).id == "a1"
        assert fast._transport.pacer is client._transport.pacer, "derived clients share the limiter"


def test_missing_api_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLIREO_API_KEY", raising=False)
    with pytest.raises(FlireoError, match="FLIREO_API_KEY"):
        AsyncFlireo()


def test_environment_supplies_key_and_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLIREO_API_KEY", "fl_env_key")
    monkeypatch.setenv("FLIREO_BASE_URL", "http://127.0.0.1:9/api/v1/")
    client = AsyncFlireo()
    assert client.config.api_key == "fl_env_key"
    assert client.config.base_url == "http://127.0.0.1:9/api/v1"


@pytest.mark.parametrize("url", ["http://api.flireo.com/api/v1", "http://10.0.0.5/api/v1", "ftp://x/y"])
def test_plain_http_is_refused_unless_loopback(url: str) -> None:
    with pytest.raises(FlireoError, match="base_url"):
        AsyncFlireo(api_key="k", base_url=url)


@pytest.mark.parametrize(
    "url", ["http://localhost:8080/api/v1", "http://127.0.0.1/api/v1", "http://[::1]:80/api/v1"]
)
def test_loopback_http_is_allowed(url: str) -> None:
    assert AsyncFlireo(api_key="k", base_url=url).config.base_url == url


@pytest.mark.parametrize(
    ("setting", "value"),
    [("timeout", 0), ("max_retries", -1), ("max_concurrency", 0), ("rate_limit", 0), ("prefetch", -1)],
)
def test_invalid_settings_are_rejected(setting: str, value: Any) -> None:
    with pytest.raises(FlireoError, match=setting):
        AsyncFlireo(api_key="k", **{setting: value})


def test_defaults_are_visible() -> None:
    config = AsyncFlireo(api_key="k").config
    assert (
        config.timeout,
        config.max_retries,
        config.max_concurrency,
        config.rate_limit,
        config.prefetch,
    ) == (30.0, 2, 16, 100, 2)
    for name in ("timeout", "max_retries", "max_concurrency", "rate_limit", "prefetch"):
        assert name in (AsyncFlireo.__doc__ or "")


async def test_bad_arguments_name_the_field_and_send_nothing(serve: Any) -> None:
    hits = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request)
        return web.json_response({"assistant": AGENT})

    base = await serve({"POST /assistants": handler, "GET /assistants/{id}": handler})
    async with AsyncFlireo(api_key="k", base_url=base, rate_limit=None) as client:
        with pytest.raises(RequestValidationError) as info:
            await client.agents.create(name=42)  # type: ignore[call-overload]
        assert info.value.field == "name"
        with pytest.raises(RequestValidationError, match="is required"):
            await client.agents.create()  # type: ignore[call-overload]
        with pytest.raises(RequestValidationError, match="not a field"):
            await client.agents.create(name="x", nmae="typo")  # type: ignore[call-overload]
        with pytest.raises(RequestValidationError) as nested:
            await client.agents.create(
                name="x", llm_config={"provider": "openai", "model": "m", "temperature": "hot"}
            )  # type: ignore[call-overload]
        assert nested.value.field == "llm_config.temperature"
        with pytest.raises(RequestValidationError, match="agent_id"):
            await client.agents.get("")
    assert hits == []


# -- secrets ---------------------------------------------------------------------------------


async def test_api_key_and_secrets_never_leak(serve: Any, caplog: pytest.LogCaptureFixture) -> None:
    secret_key = "fl_live_TOPSECRET"

    async def handler(_: web.Request) -> web.Response:
        return web.json_response({"assistant": {**AGENT, "webhook_secret": "whsec_HIDDEN"}})

    base = await serve({"GET /assistants/{id}": handler})
    caplog.set_level(logging.DEBUG, logger="flireo_async")
    async with AsyncFlireo(api_key=secret_key, base_url=base, rate_limit=None) as client:
        agent = await client.agents.get("a1")
        text = repr(client) + repr(client.config) + repr(agent) + str(agent)
    assert agent.webhook_secret == "whsec_HIDDEN"
    assert "TOPSECRET" not in text
    assert "whsec_HIDDEN" not in text
    assert caplog.records, "debug logging is on"
    assert all("TOPSECRET" not in r.getMessage() for r in caplog.records)


async def test_rate_limit_error_after_retries(serve: Any) -> None:
    async def handler(_: web.Request) -> web.Response:
        return web.json_response({"error": "Rate limit exceeded"}, status=429, headers={"Retry-After": "0"})

    base = await serve({"GET /assistants/{id}": handler})
    async with AsyncFlireo(api_key="k", base_url=base, rate_limit=None, max_retries=1) as client:
        with pytest.raises(RateLimitError) as info:
            await client.agents.get("a1")
    assert info.value.retry_after == 0


def test_flireo_log_env_turns_on_the_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    from flireo_async._logging import logger, setup_from_env

    monkeypatch.setenv("FLIREO_LOG", "debug")
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "level", logging.NOTSET)
    setup_from_env()
    assert logger.level == logging.DEBUG
    assert len(logger.handlers) == 1
