"""Bringing your own aiohttp session (its trace configs and proxy), ``trace_configs=`` on a
session the client creates, and OpenTelemetry's aiohttp-client instrumentation on our requests."""

from __future__ import annotations

import socket
import types
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.instrumentation.aiohttp_client import create_trace_config
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from flireo_async import AsyncFlireo, FlireoError

from .clock import VirtualClock
from .conftest import AGENT, KEY
from .recording_server import RecordingServer, recording_server


class Seen:
    """A TraceConfig that records what aiohttp reports for each request."""

    def __init__(self) -> None:
        self.started: list[tuple[str, str, Any]] = []
        self.ended: list[tuple[str, str, int]] = []
        self.config = aiohttp.TraceConfig()
        self.config.on_request_start.append(self._start)
        self.config.on_request_end.append(self._end)

    async def _start(
        self, _: Any, ctx: types.SimpleNamespace, params: aiohttp.TraceRequestStartParams
    ) -> None:
        self.started.append((params.method, str(params.url), ctx.trace_request_ctx))

    async def _end(self, _: Any, __: types.SimpleNamespace, params: aiohttp.TraceRequestEndParams) -> None:
        self.ended.append((params.method, str(params.url), params.response.status))


@pytest.fixture
async def server() -> AsyncIterator[RecordingServer]:
    async with recording_server() as s:
        yield s


async def test_your_sessions_trace_config_sees_our_requests(server: RecordingServer) -> None:
    seen = Seen()
    async with aiohttp.ClientSession(trace_configs=[seen.config]) as session:
        async with AsyncFlireo(api_key=KEY, base_url=server.url, rate_limit=None, session=session) as client:
            await client.agents.get("a1")
            await client.calls.say("call-1", "Hallo")
        assert not session.closed  # the client never closes a session it was given
    assert seen.started == [
        ("GET", f"{server.url}/assistants/a1", {"operation": "getAgent", "attempt": 1}),
        ("POST", f"{server.url}/calls/call-1/control", {"operation": "controlCall", "attempt": 1}),
    ]
    assert seen.ended == [
        ("GET", f"{server.url}/assistants/a1", 200),
        ("POST", f"{server.url}/calls/call-1/control", 200),
    ]
    assert [r.headers["Authorization"] for r in server.requests] == [f"Bearer {KEY}"] * 2


async def test_trace_configs_on_the_clients_own_session_see_each_attempt() -> None:
    answers = [web.json_response({"error": "busy"}, status=503), web.json_response({"assistant": AGENT})]

    async def flaky(_: web.Request) -> web.Response:
        return answers.pop(0)

    seen = Seen()
    async with (
        recording_server(getAgent=flaky) as flaky_server,
        AsyncFlireo(
            api_key=KEY,
            base_url=flaky_server.url,
            rate_limit=None,
            clock=VirtualClock(),
            trace_configs=[seen.config],
        ) as client,
    ):
        await client.agents.get("a1")
    assert [
        (status, ctx["attempt"]) for (_, _, status), (_, _, ctx) in zip(seen.ended, seen.started, strict=True)
    ] == [
        (503, 1),
        (200, 2),
    ]


def test_trace_configs_are_checked() -> None:
    with pytest.raises(FlireoError, match=r"list of aiohttp\.TraceConfig"):
        AsyncFlireo(api_key=KEY, trace_configs=aiohttp.TraceConfig())  # type: ignore[arg-type]


async def test_trace_configs_and_a_session_are_not_given_together() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(FlireoError, match=r"aiohttp.ClientSession\(trace_configs=...\)"):
            AsyncFlireo(api_key=KEY, session=session, trace_configs=[aiohttp.TraceConfig()])


def closed_port() -> int:
    """A loopback port nobody listens on: a request that still gets an answer went elsewhere."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_requests_go_through_your_sessions_proxy(server: RecordingServer) -> None:
    target = f"http://127.0.0.1:{closed_port()}/api/v1"
    proxy = server.url.removesuffix("/api/v1")
    async with (
        aiohttp.ClientSession(proxy=proxy) as session,
        AsyncFlireo(api_key=KEY, base_url=target, rate_limit=None, session=session) as client,
    ):
        agent = await client.agents.get("a1")
    assert agent.id
    (sent,) = server.requests
    assert sent.headers["Host"] == target.split("/")[2]  # addressed to the target, answered by the proxy
    assert sent.path == "/api/v1/assistants/a1"


async def test_trust_env_takes_the_proxy_from_the_environment(
    server: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = f"http://127.0.0.1:{closed_port()}/api/v1"
    monkeypatch.setenv("HTTP_PROXY", server.url.removesuffix("/api/v1"))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with (
        aiohttp.ClientSession(trust_env=True) as session,
        AsyncFlireo(api_key=KEY, base_url=target, rate_limit=None, session=session) as client,
    ):
        await client.agents.get("a1")
    (sent,) = server.requests
    assert sent.headers["Host"] == target.split("/")[2]


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def http_attributes(span: Any) -> tuple[str, str, int]:
    """(method, URL, status) from a span, under the old or the stable semantic conventions."""
    attrs = dict(span.attributes)
    method = attrs.get("http.request.method", attrs.get("http.method"))
    url = attrs.get("url.full", attrs.get("http.url"))
    status = attrs.get("http.response.status_code", attrs.get("http.status_code"))
    assert status is not None
    return str(method), str(url), int(status)


async def test_opentelemetry_spans_for_our_requests(
    server: RecordingServer, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    async with AsyncFlireo(
        api_key=KEY,
        base_url=server.url,
        rate_limit=None,
        trace_configs=[create_trace_config(tracer_provider=provider)],
    ) as client:
        await client.agents.get("a1")
        await client.agents.create(name="Support")
    finished = exporter.get_finished_spans()
    assert [http_attributes(s) for s in finished] == [
        ("GET", f"{server.url}/assistants/a1", 200),
        ("POST", f"{server.url}/assistants", 201),
    ]
    assert all(s.kind.name == "CLIENT" for s in finished)
    # The span's context travels to the server as a W3C traceparent header.
    for span, sent in zip(finished, server.requests, strict=True):
        assert sent.headers["traceparent"].split("-")[1] == format(span.context.trace_id, "032x")
    # The key is in a header, never in what the span records.
    assert not any(KEY in str(value) for s in finished for value in (s.attributes or {}).values())


async def test_opentelemetry_with_your_own_session(
    server: RecordingServer, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    tracing = create_trace_config(tracer_provider=provider)
    async with (
        aiohttp.ClientSession(trace_configs=[tracing]) as session,
        AsyncFlireo(api_key=KEY, base_url=server.url, rate_limit=None, session=session) as client,
    ):
        page = await client.calls.list(limit=100)
    assert page.items
    (span,) = exporter.get_finished_spans()
    method, url, status = http_attributes(span)
    assert (method, status) == ("GET", 200)
    assert url.startswith(f"{server.url}/calls?")
