"""Per-call options (``timeout=``, ``extra_headers=``, ``extra_query=``, ``extra_body=``) and the
client's ``default_headers``, against a loopback server that records what it receives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from flireo_async import (
    APITimeoutError,
    AsyncFlireo,
    FlireoError,
    RequestValidationError,
)
from flireo_async._options import OPTION_NAMES
from flireo_async.models import AgentCreate, SayCommand

from .clock import VirtualClock
from .conftest import AGENT, KEY
from .recording_server import RecordingServer, recording_server


@pytest.fixture
async def server() -> AsyncIterator[RecordingServer]:
    async with recording_server() as s:
        yield s


@pytest.fixture
async def client(server: RecordingServer) -> AsyncIterator[AsyncFlireo]:
    async with AsyncFlireo(api_key=KEY, base_url=server.url, rate_limit=None) as c:
        yield c


async def test_extra_headers_and_query_reach_the_wire(server: RecordingServer, client: AsyncFlireo) -> None:
    agent = await client.agents.get(
        "a1",
        extra_headers={"X-Trace": "t-1"},
        extra_query={"expand": "tools", "n": 3, "ratio": 0.5, "beta": True},
    )
    assert agent.id
    sent = server.last()
    assert sent.method == "GET"
    assert sent.headers["X-Trace"] == "t-1"
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert sent.query == {"expand": "tools", "n": "3", "ratio": "0.5", "beta": "true"}
    assert sent.body is None


async def test_extra_body_goes_over_keyword_fields(server: RecordingServer, client: AsyncFlireo) -> None:
    await client.agents.create(
        name="Support", first_message="Hallo", extra_body={"beta_voice": {"on": True}, "name": "Renamed"}
    )
    sent = server.last()
    assert sent.body == {"name": "Renamed", "first_message": "Hallo", "beta_voice": {"on": True}}
    assert sent.headers["Content-Type"] == "application/json"


async def test_options_with_a_model_body(server: RecordingServer, client: AsyncFlireo) -> None:
    await client.agents.create(
        AgentCreate(name="Support"), extra_headers={"X-Idem": "k1"}, extra_body={"x": 1}
    )
    sent = server.last()
    assert sent.body == {"name": "Support", "x": 1}
    assert sent.headers["X-Idem"] == "k1"


async def test_options_on_a_union_body_and_on_shortcuts(server: RecordingServer, client: AsyncFlireo) -> None:
    await client.calls.control(
        "call-1", SayCommand(content="Hallo", end_after=False), extra_body={"voice": "nova"}
    )
    assert server.last().body == {"type": "say", "content": "Hallo", "end_after": False, "voice": "nova"}
    await client.calls.say(
        "call-1", "Een moment", extra_headers={"X-From": "shortcut"}, extra_query={"v": "2"}
    )
    sent = server.last()
    assert sent.path == "/api/v1/calls/call-1/control"
    assert sent.headers["X-From"] == "shortcut"
    assert sent.query == {"v": "2"}
    assert sent.body["content"] == "Een moment"


async def test_extra_body_on_a_request_without_a_body(server: RecordingServer, client: AsyncFlireo) -> None:
    await client.domains.verify(extra_body={"domain": "acme.example"})
    assert server.last().body == {"domain": "acme.example"}


async def test_options_apply_to_every_page(client: AsyncFlireo) -> None:
    calls = [{"id": f"call-{i}", "status": "ended"} for i in range(5)]

    async def pages(request: web.Request) -> web.Response:
        offset = int(request.query.get("offset", "0"))
        chunk = calls[offset : offset + 2]
        return web.json_response({"calls": chunk, "pagination": {"total": 5, "limit": 2, "offset": offset}})

    async with recording_server(listCalls=pages) as server:
        paging = client.with_options(base_url=server.url)
        listed = [
            c.id
            async for c in paging.calls.list(
                limit=2, status="ended", extra_headers={"X-Job": "export"}, extra_query={"fields": "id"}
            )
        ]
    assert listed == [c["id"] for c in calls]
    assert len(server.requests) == 3
    for sent in server.requests:
        assert sent.headers["X-Job"] == "export"
        assert sent.query["fields"] == "id"
        assert sent.query["status"] == "ended"
    assert [r.query.get("offset") for r in server.requests] == [None, "2", "4"]


async def test_options_apply_to_every_retry(server: RecordingServer) -> None:
    answers = [web.json_response({"error": "busy"}, status=503), web.json_response({"assistant": AGENT})]

    async def flaky(_: web.Request) -> web.Response:
        return answers.pop(0)

    async with (
        recording_server(getAgent=flaky) as flaky_server,
        AsyncFlireo(api_key=KEY, base_url=flaky_server.url, rate_limit=None, clock=VirtualClock()) as client,
    ):
        raw = await client.with_raw_response.agents.get("a1", extra_headers={"X-Trace": "t-2"})
    assert raw.attempts == 2
    assert [r.headers["X-Trace"] for r in flaky_server.requests] == ["t-2", "t-2"]


async def test_a_call_timeout_replaces_the_clients(server: RecordingServer) -> None:
    release = asyncio.Event()

    async def hang(_: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    async with (
        recording_server(getCall=hang) as slow,
        AsyncFlireo(api_key=KEY, base_url=slow.url, rate_limit=None, timeout=30, max_retries=0) as client,
    ):
        try:
            with pytest.raises(APITimeoutError, match=r"timed out after 0\.2s"):
                await client.calls.get("call-1", timeout=0.2)
        finally:
            release.set()


async def test_default_headers_and_their_precedence(server: RecordingServer) -> None:
    async with AsyncFlireo(
        api_key=KEY,
        base_url=server.url,
        rate_limit=None,
        default_headers={"X-Team": "sales", "User-Agent": "my-app/1.0"},
    ) as client:
        await client.agents.get("a1")
        sent = server.last()
        assert sent.headers["X-Team"] == "sales"
        assert sent.headers["User-Agent"] == "my-app/1.0"

        # A call's extra header replaces a default one of the same name, in any case.
        await client.agents.get("a1", extra_headers={"x-team": "support"})
        assert server.last().headers.getall("X-Team") == ["support"]

        # with_options adds to the defaults; the original client keeps its own.
        derived = client.with_options(default_headers={"X-Env": "prod", "X-TEAM": "ops"})
        await derived.agents.get("a1")
        sent = server.last()
        assert sent.headers.getall("X-Team") == ["ops"]
        assert sent.headers["X-Env"] == "prod"
        assert sent.headers["User-Agent"] == "my-app/1.0"
        await client.agents.get("a1")
        assert "X-Env" not in server.last().headers
        assert dict(client.config.default_headers) == {"X-Team": "sales", "User-Agent": "my-app/1.0"}


def test_default_header_values_stay_out_of_the_config_repr() -> None:
    client = AsyncFlireo(api_key=KEY, default_headers={"X-Gateway-Token": "gw-secret-123"})
    text = repr(client.config)
    assert "X-Gateway-Token" in text
    assert "gw-secret-123" not in text
    assert "gw-secret-123" not in repr(
        client.agents._options(None, {"X-Gateway-Token": "gw-secret-123"}, None, None)
    )


async def test_authorization_cannot_be_overridden(server: RecordingServer, client: AsyncFlireo) -> None:
    with pytest.raises(RequestValidationError) as info:
        await client.agents.get("a1", extra_headers={"authorization": "Bearer someone-else"})
    assert info.value.field == "extra_headers['authorization']"
    assert "api_key" in str(info.value)
    assert "someone-else" not in str(info.value)
    with pytest.raises(FlireoError, match=r"default_headers\['Authorization'\]"):
        AsyncFlireo(api_key=KEY, default_headers={"Authorization": "Bearer someone-else"})
    with pytest.raises(FlireoError, match=r"default_headers\['AUTHORIZATION'\]"):
        client.with_options(default_headers={"AUTHORIZATION": "Bearer someone-else"})
    assert server.requests == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": "5"}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"extra_headers": {"X-N": 1}}, "extra_headers['X-N']"),
        ({"extra_headers": {"X-Evil": "a\r\nX-Injected: 1"}}, "extra_headers['X-Evil']"),
        ({"extra_headers": {"bad name": "x"}}, "extra_headers['bad name']"),
        ({"extra_headers": ["X-A"]}, "extra_headers"),
        ({"extra_query": {"n": None}}, "extra_query['n']"),
        ({"extra_query": {"n": float("inf")}}, "extra_query['n']"),
        ({"extra_query": {"status": "ended"}}, "extra_query['status']"),
        ({"extra_body": {"x": 1}}, "extra_body"),
        ({"extra_body": [1]}, "extra_body"),
    ],
)
async def test_bad_options_name_the_option_and_send_nothing(
    server: RecordingServer, client: AsyncFlireo, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(RequestValidationError) as info:
        await client.calls.list(**options)
    assert info.value.field == field
    assert server.requests == []


async def test_a_declared_query_parameter_is_refused_in_extra_query(client: AsyncFlireo) -> None:
    with pytest.raises(RequestValidationError, match="pass it as status="):
        client.calls.list(extra_query={"status": "ended"})  # refused when called, before awaiting


async def test_raw_responses_take_the_options_too(server: RecordingServer, client: AsyncFlireo) -> None:
    raw = await client.with_raw_response.agents.get("a1", extra_headers={"X-Raw": "1"})
    assert raw.status == 200
    assert server.last().headers["X-Raw"] == "1"


def test_the_generator_and_the_core_agree_on_the_option_names() -> None:
    from codegen.generate import OPTION_NAMES as GENERATED

    assert GENERATED == OPTION_NAMES
