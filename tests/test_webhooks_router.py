"""WebhookRouter on aiohttp.web: verification, dispatch, replies, deadlines, duplicates, async tools."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from flireo_async.models import AssistantOverride, AssistantRequestAssistant, LLMConfig
from flireo_async.webhooks import (
    AssistantRequestMessage,
    AssistantRequestResponse,
    DeliveryCache,
    EndOfCallReportMessage,
    GenericWebhookMessage,
    Reply,
    StatusUpdateMessage,
    ToolCallResult,
    ToolError,
    ToolInvocation,
    WebhookRouter,
    sign,
)
from flireo_async.webhooks._dedupe import delivery_key

from .test_webhooks_verify import CALL, END_OF_CALL, SECRET, envelope, tool_calls

PATH = "/flireo/webhook"
Start = Callable[..., Awaitable[TestClient[Any, Any]]]


def fast_router(**kwargs: Any) -> WebhookRouter:
    """Small deadlines so that deadline tests take fractions of a second."""
    options: dict[str, Any] = {
        "deadline_margin": 0.1,
        "assistant_request_deadline": 0.4,
        "tool_calls_deadline": 0.5,
    }
    options.update(kwargs)
    return WebhookRouter(SECRET, **options)


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    clients: list[TestClient[Any, Any]] = []

    async def start_router(router: WebhookRouter, path: str = PATH) -> TestClient[Any, Any]:
        app = web.Application()
        router.add_to(app, path)
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield start_router
    for client in clients:
        await client.close()


@attrs.frozen
class Answer:
    status: int
    body: Any
    elapsed: float


def delivery(
    payload: Any, *, secret: str = SECRET, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return body, sign(body, secret, timestamp)


async def post(
    client: TestClient[Any, Any], body: bytes, headers: dict[str, str], path: str = PATH
) -> Answer:
    started = time.monotonic()
    async with client.post(path, data=body, headers=headers) as response:
        text = await response.text()
        return Answer(response.status, json.loads(text) if text else None, time.monotonic() - started)


async def deliver(client: TestClient[Any, Any], payload: Any, **kwargs: Any) -> Answer:
    return await post(client, *delivery(payload, **kwargs))


def results(answer: Answer) -> list[Any]:
    assert answer.status == 200, answer
    assert set(answer.body) == {"results"}
    return [(entry["toolCallId"], entry["result"]) for entry in answer.body["results"]]


# --- verification at the HTTP boundary --------------------------------------------------------


async def test_bad_signature_answers_401_and_runs_nothing(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    router = fast_router()
    calls: list[Any] = []
    router.status_update(calls.append)
    client = await start(router)
    body, headers = delivery(envelope("status-update"), secret="not-the-secret")
    answer = await post(client, body, headers)
    assert (answer.status, answer.body) == (401, {"error": "bad_signature"})
    body, headers = delivery(envelope("status-update"))
    assert (await post(client, body + b" ", headers)).status == 401
    assert calls == []
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    ("mutate", "status", "reason"),
    [
        (lambda h: {k: v for k, v in h.items() if k != "X-Webhook-Signature"}, 401, "missing_header"),
        (lambda h: {k: v for k, v in h.items() if k != "X-Webhook-Timestamp"}, 401, "missing_header"),
        (lambda h: {**h, "X-Webhook-Timestamp": "soon"}, 401, "invalid_timestamp"),
    ],
)
async def test_header_failures(start: Start, mutate: Any, status: int, reason: str) -> None:
    client = await start(fast_router())
    body, headers = delivery(envelope("status-update"))
    answer = await post(client, body, mutate(headers))
    assert (answer.status, answer.body) == (status, {"error": reason})


@pytest.mark.parametrize("offset", [-301, 301])
async def test_replay_outside_window_answers_401(start: Start, offset: int) -> None:
    client = await start(fast_router())
    answer = await deliver(client, envelope("status-update"), timestamp=int(time.time()) + offset)
    assert (answer.status, answer.body) == (401, {"error": "stale_timestamp"})


async def test_bad_json_answers_400(start: Start) -> None:
    client = await start(fast_router())
    answer = await deliver(client, b"{not json")
    assert (answer.status, answer.body) == (400, {"error": "bad_json"})
    answer = await deliver(client, {"message": {"type": "tool-calls"}})
    assert (answer.status, answer.body) == (400, {"error": "invalid_payload"})


async def test_unsigned_router_needs_explicit_opt_out(start: Start) -> None:
    with pytest.raises(ValueError, match="require_signature=False"):
        WebhookRouter(None)
    router = WebhookRouter(None, require_signature=False)
    seen: list[Any] = []
    router.status_update(seen.append)
    client = await start(router)
    answer = await post(client, json.dumps(envelope("status-update")).encode(), {})
    assert answer.status == 204
    assert len(seen) == 1


# --- tool-calls -------------------------------------------------------------------------------


async def test_tool_results_in_documented_shape(start: Start) -> None:
    router = fast_router()

    @router.tool("lookup_customer")
    async def lookup(tool: ToolInvocation) -> dict[str, Any]:
        assert tool.call.id == CALL["id"]
        assert tool.message.tool_call_list[0].id == tool.id
        return {"name": "Jan de Vries", "phone": tool.arguments["phone"]}

    @router.tool("opening_hours")
    def hours(tool: ToolInvocation) -> str:  # a plain function works too
        return "09:00-17:00"

    @router.tool("nothing")
    async def nothing(tool: ToolInvocation) -> None:
        return None

    @router.tool("as_model")
    async def as_model(tool: ToolInvocation) -> ToolCallResult:
        return ToolCallResult(tool_call_id=tool.id, result=[1, 2])

    client = await start(router)
    answer = await deliver(
        client,
        tool_calls(
            ("t1", "lookup_customer", {"phone": "+316"}),
            ("t2", "opening_hours", {}),
            ("t3", "nothing", {}),
            ("t4", "as_model", {}),
        ),
    )
    assert results(answer) == [
        ("t1", {"name": "Jan de Vries", "phone": "+316"}),
        ("t2", "09:00-17:00"),
        ("t3", None),
        ("t4", [1, 2]),
    ]


async def test_camel_case_tool_calls_dispatch(start: Start) -> None:
    router = fast_router()
    router.tool("book")(lambda tool: {"booked": tool.arguments["slot"]})
    client = await start(router)
    message = tool_calls(("t1", "book", {"slot": "09:00"}))["message"]
    message["toolCallList"] = message.pop("tool_call_list")
    message["phoneNumber"] = message.pop("phone_number")
    message["call"]["type"] = "inboundPhoneCall"
    assert results(await deliver(client, {"message": message})) == [("t1", {"booked": "09:00"})]


async def test_tool_errors_become_error_results(start: Start, caplog: pytest.LogCaptureFixture) -> None:
    router = fast_router()

    @router.tool("crash")
    async def crash(tool: ToolInvocation) -> None:
        raise RuntimeError("db password=hunter2 rejected")

    @router.tool("not_found")
    async def not_found(tool: ToolInvocation) -> None:
        raise ToolError("Customer not found")

    @router.tool("unserialisable")
    async def unserialisable(tool: ToolInvocation) -> Any:
        return {"when": object()}

    @router.tool("fine")
    async def fine(tool: ToolInvocation) -> str:
        return "ok"

    client = await start(router)
    with caplog.at_level(logging.ERROR, logger="flireo_async.webhooks"):
        answer = await deliver(
            client,
            tool_calls(
                ("t1", "crash", {}),
                ("t2", "not_found", {}),
                ("t3", "missing_tool", {}),
                ("t4", "unserialisable", {}),
                ("t5", "fine", {}),
            ),
        )
    assert results(answer) == [
        ("t1", {"error": "The tool 'crash' failed."}),
        ("t2", {"error": "Customer not found"}),
        ("t3", {"error": "Unknown tool 'missing_tool'."}),
        ("t4", {"error": "The tool 'unserialisable' failed."}),
        ("t5", "ok"),
    ]
    assert "hunter2" not in json.dumps(answer.body)  # logged, never sent
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any("'crash' failed" in r.getMessage() and r.exc_info for r in failures)
    assert any("missing_tool" in r.getMessage() for r in failures)


async def test_tool_calls_run_concurrently(start: Start) -> None:
    router = fast_router()
    started: dict[str, asyncio.Event] = {"a": asyncio.Event(), "b": asyncio.Event()}

    @router.tool("meet")
    async def meet(tool: ToolInvocation) -> str:
        # Each call waits for the other to start: run one after the other, the first would
        # wait until the deadline and answer with an error instead of its id.
        started[tool.id].set()
        await started["b" if tool.id == "a" else "a"].wait()
        return tool.id

    client = await start(router)
    answer = await deliver(client, tool_calls(("a", "meet", {}), ("b", "meet", {})))
    assert results(answer) == [("a", "a"), ("b", "b")]


async def test_tool_deadline_gives_error_result_and_cancels(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    router = fast_router()  # tool-calls deadline 0.5 s, margin 0.1 s: answer at ~0.4 s
    cancelled = asyncio.Event()

    @router.tool("slow")
    async def slow(tool: ToolInvocation) -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    router.tool("fast")(lambda tool: "quick")
    client = await start(router)
    with caplog.at_level(logging.ERROR, logger="flireo_async.webhooks"):
        answer = await deliver(client, tool_calls(("t1", "slow", {}), ("t2", "fast", {})))
    assert results(answer) == [("t1", {"error": "The tool 'slow' did not answer in time."}), ("t2", "quick")]
    assert answer.elapsed >= 0.35, answer.elapsed  # not before the deadline less its margin
    await asyncio.wait_for(cancelled.wait(), 1)
    assert any("did not answer within 0.40 s" in r.getMessage() for r in caplog.records)


async def test_deadline_holds_even_if_handler_resists_cancellation(start: Start) -> None:
    router = fast_router()
    finished = asyncio.Event()

    @router.tool("stubborn")
    async def stubborn(tool: ToolInvocation) -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0.3)  # slow cleanup: must not delay the reply
            finished.set()
            raise
        return "never"

    client = await start(router)
    answer = await deliver(client, tool_calls(("t1", "stubborn", {})))
    assert results(answer) == [("t1", {"error": "The tool 'stubborn' did not answer in time."})]
    assert not finished.is_set()  # the reply did not wait for the slow cleanup
    await router.aclose(timeout=2)
    assert finished.is_set()


async def test_async_tool_answers_at_once_and_runs_in_background(start: Start) -> None:
    router = fast_router()
    done = asyncio.Event()
    release = asyncio.Event()
    seen: list[dict[str, Any]] = []

    @router.tool("send_sms", async_=True)
    async def send_sms(tool: ToolInvocation) -> str:
        await release.wait()  # held until the test has the answer: it cannot come after
        seen.append(tool.arguments)
        done.set()
        return "sent"

    @router.tool("crash_later", async_=True)
    async def crash_later(tool: ToolInvocation) -> None:
        raise RuntimeError("boom")

    client = await start(router)
    answer = await deliver(client, tool_calls(("t1", "send_sms", {"to": "+316"}), ("t2", "crash_later", {})))
    assert results(answer) == [("t1", "accepted"), ("t2", "accepted")]
    assert not done.is_set()
    release.set()
    await router.aclose(timeout=2)  # what app shutdown does
    assert done.is_set()
    assert seen == [{"to": "+316"}]


async def test_background_tasks_awaited_on_app_cleanup() -> None:
    router = fast_router()
    done = asyncio.Event()

    @router.tool("later", async_=True)
    async def later(tool: ToolInvocation) -> None:
        await asyncio.sleep(0.2)
        done.set()

    server = await router.start(port=0)
    async with server, aiohttp.ClientSession() as session:
        body, headers = delivery(tool_calls(("t1", "later", {})))
        async with session.post(server.url, data=body, headers=headers) as response:
            assert response.status == 200
    assert done.is_set()  # server.close() ran the app's cleanup, which awaited the tool


# --- assistant-request ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        (None, {}),
        (
            AssistantRequestResponse(
                assistant=AssistantRequestAssistant(
                    first_message="Hallo Jan", max_duration_seconds=300, metadata={"crm_id": "A-1042"}
                )
            ),
            {
                "assistant": {
                    "first_message": "Hallo Jan",
                    "max_duration_seconds": 300,
                    "metadata": {"crm_id": "A-1042"},
                }
            },
        ),
        (
            AssistantRequestResponse(
                assistant_id="8a7b",
                assistant_override=AssistantOverride(llm_config=LLMConfig(provider="openai", model="gpt-4o")),
            ),
            {
                "assistant_id": "8a7b",
                "assistant_override": {"llm_config": {"provider": "openai", "model": "gpt-4o"}},
            },
        ),
        (AssistantRequestResponse(error="We zijn gesloten."), {"error": "We zijn gesloten."}),
        ({"assistant_id": "8a7b"}, {"assistant_id": "8a7b"}),
        ({}, {}),
    ],
)
async def test_assistant_request_replies(start: Start, returned: Any, expected: dict[str, Any]) -> None:
    router = fast_router()
    events: list[AssistantRequestMessage] = []

    @router.assistant_request
    async def choose(event: AssistantRequestMessage) -> Any:
        events.append(event)
        return returned

    client = await start(router)
    answer = await deliver(client, envelope("assistant-request", call={**CALL, "status": "ringing"}))
    assert (answer.status, answer.body) == (200, expected)
    assert isinstance(events[0], AssistantRequestMessage)


async def test_assistant_request_without_handler_answers_empty(start: Start) -> None:
    client = await start(fast_router())
    answer = await deliver(client, envelope("assistant-request"))
    assert (answer.status, answer.body) == (200, {})


@pytest.mark.parametrize("behaviour", ["raises", "wrong-type", "slow"])
async def test_assistant_request_fallback_is_empty_object(
    start: Start, behaviour: str, caplog: pytest.LogCaptureFixture
) -> None:
    router = fast_router()  # assistant-request deadline 0.4 s, margin 0.1 s: answer at ~0.3 s

    @router.assistant_request
    async def choose(event: AssistantRequestMessage) -> Any:
        if behaviour == "raises":
            raise RuntimeError("crm down")
        if behaviour == "wrong-type":
            return "agent-42"
        await asyncio.sleep(10)

    client = await start(router)
    with caplog.at_level(logging.ERROR, logger="flireo_async.webhooks"):
        answer = await deliver(client, envelope("assistant-request"))
    assert (answer.status, answer.body) == (200, {})
    assert any("saved agent" in r.getMessage() for r in caplog.records)
    if behaviour == "slow":
        assert answer.elapsed >= 0.25, answer.elapsed  # answered at the deadline, not before
    await router.aclose(timeout=1)


# --- notifications ----------------------------------------------------------------------------


async def test_status_update_and_end_of_call_report_answer_204(start: Start) -> None:
    router = fast_router()
    statuses: list[StatusUpdateMessage] = []
    reports: list[EndOfCallReportMessage] = []

    @router.status_update
    async def on_status(event: StatusUpdateMessage) -> None:
        statuses.append(event)

    @router.end_of_call_report
    async def on_report(event: EndOfCallReportMessage) -> None:
        reports.append(event)

    client = await start(router)
    answer = await deliver(client, envelope("status-update", end_reason="user_hangup"))
    assert (answer.status, answer.body) == (204, None)
    assert (await deliver(client, END_OF_CALL)).status == 204
    assert isinstance(statuses[0], StatusUpdateMessage)
    assert statuses[0].end_reason == "user_hangup"
    assert isinstance(reports[0], EndOfCallReportMessage)
    assert reports[0].duration_seconds == 84


async def test_events_without_handler_answer_204(start: Start) -> None:
    client = await start(fast_router())
    for event in ("status-update", "end-of-call-report", "speech-update"):
        payload = END_OF_CALL if event == "end-of-call-report" else envelope(event)
        assert (await deliver(client, payload)).status == 204


async def test_unknown_event_type_with_on(start: Start) -> None:
    router = fast_router()
    seen: list[GenericWebhookMessage] = []
    router.on("transcript")(seen.append)
    client = await start(router)
    assert (await deliver(client, envelope("transcript", text="hallo"))).status == 204
    assert isinstance(seen[0], GenericWebhookMessage)
    assert seen[0].extra == {"text": "hallo"}


async def test_failing_event_handler_answers_500_and_redelivery_runs_again(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    router = fast_router()
    attempts: list[int] = []

    @router.end_of_call_report
    async def store(event: EndOfCallReportMessage) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("database unavailable")

    client = await start(router)
    body, headers = delivery(END_OF_CALL)
    with caplog.at_level(logging.ERROR, logger="flireo_async.webhooks"):
        first = await post(client, body, headers)
    assert (first.status, first.body) == (500, {"error": "handler failed"})
    assert "database unavailable" not in json.dumps(first.body)
    assert any(r.exc_info for r in caplog.records)
    assert (await post(client, body, headers)).status == 204  # the redelivery ran the handler
    assert (await post(client, body, headers)).status == 204  # a third copy is a duplicate
    assert len(attempts) == 2


# --- duplicates -------------------------------------------------------------------------------


async def test_duplicate_delivery_replays_answer_without_rerunning(start: Start) -> None:
    router = fast_router()
    runs: list[str] = []

    @router.tool("book")
    async def book(tool: ToolInvocation) -> dict[str, Any]:
        runs.append(tool.id)
        return {"booking": len(runs)}

    statuses: list[Any] = []
    router.status_update(statuses.append)
    client = await start(router)
    body, headers = delivery(tool_calls(("t1", "book", {})))
    first = await post(client, body, headers)
    second = await post(client, body, headers)
    assert results(first) == results(second) == [("t1", {"booking": 1})]
    assert runs == ["t1"]

    body, headers = delivery(envelope("status-update"))
    assert [(await post(client, body, headers)).status for _ in range(3)] == [204, 204, 204]
    assert len(statuses) == 1

    # Same body, new timestamp: a new delivery (the platform sent the event again on purpose).
    body, headers = delivery(tool_calls(("t1", "book", {})), timestamp=int(time.time()) - 5)
    assert results(await post(client, body, headers)) == [("t1", {"booking": 2})]


async def test_concurrent_duplicates_share_one_run(start: Start) -> None:
    router = fast_router()
    runs: list[str] = []

    @router.tool("slow")
    async def slow(tool: ToolInvocation) -> int:
        runs.append(tool.id)
        await asyncio.sleep(0.15)
        return 7

    client = await start(router)
    body, headers = delivery(tool_calls(("t1", "slow", {})))
    answers = await asyncio.gather(*(post(client, body, headers) for _ in range(3)))
    assert [results(a) for a in answers] == [[("t1", 7)]] * 3
    assert runs == ["t1"]


async def test_an_in_process_copy_waits_no_longer_than_it_may() -> None:
    cache = DeliveryCache(max_entries=4)
    key, later = delivery_key("1767787200", b"{}"), time.time() + 300
    assert await cache.claim(key, expires_at=later, wait=None) is None
    assert await cache.claim(key, expires_at=later, wait=0.01) == Reply(503)  # the first still runs
    waiting = asyncio.create_task(cache.claim(key, expires_at=later, wait=None))
    await cache.release(key, Reply(200, b"[]"), remember=True)
    assert await waiting == Reply(200, b"[]")
    assert await cache.claim(key, expires_at=later, wait=0) == Reply(200, b"[]")
    # An expired entry is a new delivery.
    assert await cache.claim(b"old", expires_at=time.time() - 1, wait=None) is None
    assert await cache.claim(b"old", expires_at=later, wait=None) is None


async def test_duplicate_memory_is_bounded(start: Start) -> None:
    router = fast_router(dedupe_size=2)
    seen: list[str] = []
    router.status_update(lambda event: seen.append(event.call.status))
    client = await start(router)
    deliveries = [delivery(envelope("status-update", call={**CALL, "status": s})) for s in ("a", "b", "c")]
    for body, headers in deliveries:
        await post(client, body, headers)
    await post(client, *deliveries[2])  # still remembered
    await post(client, *deliveries[0])  # evicted: runs again
    assert seen == ["a", "b", "c", "a"]
    cache = router._deliveries
    assert isinstance(cache, DeliveryCache)
    assert len(cache) <= 2


async def test_dedupe_can_be_turned_off(start: Start) -> None:
    router = fast_router(dedupe_size=0)
    seen: list[Any] = []
    router.status_update(seen.append)
    client = await start(router)
    body, headers = delivery(envelope("status-update"))
    await post(client, body, headers)
    await post(client, body, headers)
    assert len(seen) == 2


# --- registration and configuration -----------------------------------------------------------


def test_registration_errors() -> None:
    router = fast_router()
    router.tool("x")(lambda tool: None)
    with pytest.raises(ValueError, match="already registered"):
        router.tool("x")(lambda tool: None)
    with pytest.raises(ValueError, match="non-empty"):
        router.tool("")
    router.status_update(lambda event: None)
    with pytest.raises(ValueError, match="already registered"):
        router.on("status-update")(lambda event: None)
    with pytest.raises(ValueError, match="assistant_request"):
        router.on("assistant-request")
    with pytest.raises(ValueError, match="tool"):
        router.on("tool-calls")
    router.assistant_request(lambda event: None)
    with pytest.raises(ValueError, match="already registered"):
        router.assistant_request(lambda event: None)


@pytest.mark.parametrize(
    "options",
    [
        {"deadline_margin": -0.1},
        {"deadline_margin": 5.0},
        {"tool_calls_deadline": 0.2, "deadline_margin": 0.5},
        {"tolerance": -1},
    ],
)
def test_invalid_configuration(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"deadline|tolerance"):
        WebhookRouter(SECRET, **options)


def test_defaults_and_repr_hide_secret() -> None:
    router = WebhookRouter(SECRET)
    assert (router.tolerance, router.deadline_margin) == (300, 0.5)
    assert (router.assistant_request_deadline, router.tool_calls_deadline) == (5.0, 10.0)
    router.tool("lookup")(lambda tool: None)
    text = repr(router)
    assert SECRET not in text
    assert "lookup" in text


# --- mounting and serving ---------------------------------------------------------------------


async def test_mount_on_custom_path_next_to_other_routes(start: Start) -> None:
    router = fast_router()
    router.tool("ping")(lambda tool: "pong")
    client = await start(router, "/hooks/flireo")
    body, headers = delivery(tool_calls(("t1", "ping", {})))
    assert results(await post(client, body, headers, "/hooks/flireo")) == [("t1", "pong")]
    async with client.get("/hooks/flireo") as response:
        assert response.status == 405


async def test_standalone_app_and_add_post(start: Start) -> None:
    router = fast_router()
    router.tool("ping")(lambda tool: "pong")
    app = router.app()
    assert any(
        r.method == "POST" and r.resource is not None and r.resource.canonical == PATH
        for r in app.router.routes()
    )
    other = web.Application()
    other.router.add_post("/custom", router.handle)
    async with TestClient(TestServer(other)) as client:
        body, headers = delivery(tool_calls(("t1", "ping", {})))
        assert results(await post(client, body, headers, "/custom")) == [("t1", "pong")]


async def test_serve_until_cancelled() -> None:
    router = fast_router()
    router.tool("ping")(lambda tool: "pong")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    task = asyncio.create_task(router.serve("127.0.0.1", port))
    url = f"http://127.0.0.1:{port}{PATH}"
    body, headers = delivery(tool_calls(("t1", "ping", {})))
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    assert await response.json() == {"results": [{"toolCallId": "t1", "result": "pong"}]}
                    break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.02)
        else:
            pytest.fail("server did not start")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        pass
