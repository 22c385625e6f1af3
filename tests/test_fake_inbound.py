"""FakeFlireo's inbound calls against a bare receiver whose answers each test chooses.

The receiver answers whatever the test scripts (garbage included), so these tests pin down how
the fake treats every reply form of assistant-request and tool-calls, how it signs and routes
deliveries, and how it redelivers notifications.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from flireo_async import AsyncFlireo, RequestValidationError
from flireo_async.testing import FakeFlireo, WebhookDelivery
from flireo_async.webhooks import ToolCallsMessage, WebhookVerificationError, verify
from tests.typed import present

SECRET = "whsec_fake_inbound_77"
CALLER = "+31612345678"
SPEED = 20.0

Answer = tuple[int, bytes]
Responder = Callable[[str, dict[str, Any]], Answer]


def answer(status: int = 200, body: Any = None, *, raw: bytes | None = None) -> Answer:
    return status, raw if raw is not None else (b"" if body is None else json.dumps(body).encode())


class Receiver:
    """A webhook endpoint that records deliveries and answers per event with ``responders``."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.responders: dict[str, Responder] = {}
        self.url = ""
        self.base = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        event = request.headers.get("X-Webhook-Event", "")
        self.received.append((request.path, dict(request.headers), body))
        responder = self.responders.get(event)
        status, payload = responder(request.path, json.loads(body)["message"]) if responder else (204, b"")
        return web.Response(status=status, body=payload, content_type="application/json")

    def events(self, path: str | None = None) -> list[str]:
        return [h["X-Webhook-Event"] for p, h, _ in self.received if path is None or p == path]


class World:
    def __init__(self, fake: FakeFlireo, client: AsyncFlireo, receiver: Receiver) -> None:
        self.fake = fake
        self.client = client
        self.receiver = receiver

    async def agent(self, **fields: Any) -> str:
        body: dict[str, Any] = {
            "name": "Support",
            "first_message": "Goedemiddag, met Acme.",
            "webhook_url": self.receiver.url,
            "webhook_secret": SECRET,
            **fields,
        }
        return (await self.client.agents.create(**body)).id

    async def number(self, agent_id: str | None, phone: str = "+31850835037") -> str:
        return (await self.client.numbers.create(phone_number=phone, agent_id=agent_id)).id


@asynccontextmanager
async def world(**fake_options: Any) -> AsyncIterator[World]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    receiver.url = receiver.base + "/hook"
    options = {"speed": SPEED, "rate_limit": None, "seed": 5, **fake_options}
    try:
        async with (
            FakeFlireo(**options) as fake,
            AsyncFlireo(api_key=fake.api_key, base_url=fake.url, rate_limit=None) as client,
        ):
            yield World(fake, client, receiver)
    finally:
        await runner.cleanup()


def tools(*definitions: dict[str, Any]) -> dict[str, Any]:
    return {"llm_config": {"provider": "openai", "model": "gpt-4o-mini", "tools": list(definitions)}}


def by_event(deliveries: list[WebhookDelivery], event: str) -> list[WebhookDelivery]:
    return [d for d in deliveries if d.event == event]


# -- assistant-request ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (answer(500, {"error": "boom"}), "the receiver answered HTTP 500"),
        (answer(raw=b"<html>Bad gateway</html>"), "the reply is not JSON"),
        (answer(raw=b'{"assistant": {"max_duration_seconds": NaN}}'), "the reply is not JSON"),
        (answer(body=["assistant_id"]), "the reply is not a JSON object"),
        (
            answer(body={"assistant_id": "no-such-agent"}),
            "no saved agent has the assistant_id 'no-such-agent'",
        ),
        (
            answer(body={"assistant": {"first_message": 42}}),
            "the reply does not fit AssistantRequestResponse: assistant.first_message: must be a string",
        ),
    ],
)
async def test_unusable_assistant_request_reply_falls_back_to_the_saved_agent(
    reply: Answer, reason: str
) -> None:
    async with world() as w:
        w.receiver.responders["assistant-request"] = lambda path, message: reply
        number_id = await w.number(await w.agent())
        call = await w.fake.simulate_inbound_call(number_id, caller=CALLER, duration=2)
        await call.wait()

    assert call.assistant_request is not None
    assert call.assistant_request.answer == "fallback"
    assert call.assistant_request.reason == reason
    assert call.transcript[0]["content"] == "Goedemiddag, met Acme."
    assert call.status == "ended"


async def test_assistant_request_reply_forms() -> None:
    async with world() as w:
        saved = await w.agent(max_duration_seconds=600)
        other = await w.agent(name="Other", first_message="Met de andere lijn.")
        number_id = await w.number(saved)
        replies = iter(
            [
                {},
                {"assistant": {"first_message": "Hallo Jan", "metadata": {"crm_id": "A-1"}}},
                # The older camelCase forms are still read.
                {"assistant": {"firstMessage": "Oude stijl"}, "maxDurationSeconds": 1},
                {"assistant_override": {"first_message": "Alleen een override"}},
                {"assistant_id": other},
                {"assistant_id": other, "assistant_override": {"first_message": "Andere lijn, aangepast"}},
            ]
        )
        w.receiver.responders["assistant-request"] = lambda path, message: answer(body=next(replies))
        calls = []
        for _ in range(6):
            call = await w.fake.simulate_inbound_call(number_id, caller=CALLER, duration=2)
            calls.append(await call.wait())

    outcomes = [
        (c.assistant_request.answer, c.assistant_request.agent_id) for c in calls if c.assistant_request
    ]
    assert outcomes == [
        ("saved_agent", saved),
        ("assistant", saved),
        ("assistant", saved),
        ("assistant_override", saved),
        ("assistant_id", other),
        ("assistant_id", other),
    ]
    assert [c.transcript[0]["content"] for c in calls] == [
        "Goedemiddag, met Acme.",
        "Hallo Jan",
        "Oude stijl",
        "Alleen een override",
        "Met de andere lijn.",
        "Andere lijn, aangepast",
    ]
    assert calls[1].config["metadata"] == {"crm_id": "A-1"}
    assert calls[2].record["end_reason"] == "max_duration"
    assert calls[2].record["duration_seconds"] == 1
    assert [c.record["agent_id"] for c in calls] == [saved] * 4 + [other] * 2


async def test_assistant_request_only_when_the_agent_subscribes_to_it() -> None:
    async with world() as w:
        agent = await w.agent(webhook_events=["end-of-call-report"])
        call = await w.fake.simulate_inbound_call(await w.number(agent), caller=CALLER, duration=2)
        await call.wait()

    assert call.assistant_request is None
    assert w.receiver.events() == ["end-of-call-report"]


async def test_assistant_reply_can_move_the_call_to_another_webhook() -> None:
    async with world() as w:
        w.receiver.responders["assistant-request"] = lambda path, message: answer(
            body={
                "assistant": {
                    "webhook_url": w.receiver.base + "/per-call",
                    "webhook_secret": "whsec_per_call",
                    "webhook_events": ["end-of-call-report"],
                }
            }
        )
        call = await w.fake.simulate_inbound_call(await w.number(await w.agent()), caller=CALLER, duration=2)
        await call.wait()

    assert w.receiver.events("/hook") == ["assistant-request"]
    assert w.receiver.events("/per-call") == ["end-of-call-report"]
    _, headers, body = w.receiver.received[-1]
    assert present(verify(body, headers, "whsec_per_call").call).id == call.id


# -- tool-calls -------------------------------------------------------------------------------------


async def test_tool_call_reply_forms() -> None:
    replies: list[Callable[[dict[str, Any]], Answer]] = [
        lambda m: answer(
            body={"results": [{"toolCallId": m["tool_call_list"][0]["id"], "result": {"ok": 1}}]}
        ),
        lambda m: answer(body={"result": "simpel"}),
        lambda m: answer(body={"name": "Jan"}),  # the direct form
        lambda m: answer(body={"error": "Klant niet gevonden"}),
        lambda m: answer(body={"results": [{"toolCallId": "someone-else", "result": 1}]}),
        lambda m: answer(body={"results": [{"toolCallId": m["tool_call_list"][0]["id"], "error": "stuk"}]}),
        lambda m: answer(503, {"error": "unavailable"}),
        lambda m: answer(raw=b"OK"),
        lambda m: answer(body=[1, 2]),
        lambda m: answer(204),
        lambda m: answer(body={"results": "nope"}),
    ]
    async with world() as w:
        pending = iter(replies)
        w.receiver.responders["tool-calls"] = lambda path, message: next(pending)(message)
        agent = await w.agent(**tools({"name": "crm", "description": "CRM"}))
        call = await w.fake.simulate_inbound_call(
            await w.number(agent),
            caller=CALLER,
            tool_calls=[{"name": "crm", "arguments": {"i": i}} for i in range(len(replies))],
            duration=2,
        )
        await call.wait()

    assert [(t.result, t.error) for t in call.tool_calls] == [
        ({"ok": 1}, None),
        ("simpel", None),
        ({"name": "Jan"}, None),
        (None, "Klant niet gevonden"),
        (None, "The tool 'crm' gave no result."),
        (None, "stuk"),
        (None, "The tool 'crm' failed (HTTP 503)."),
        (None, "The tool 'crm' gave an unreadable answer."),
        (None, "The tool 'crm' gave an unreadable answer."),
        (None, "The tool 'crm' gave an unreadable answer."),
        (None, "The tool 'crm' gave an unreadable answer."),
    ]
    assert [t.arguments for t in call.tool_calls] == [{"i": i} for i in range(len(replies))]
    # Tool calls go out one round after the other, never twice (no redelivery of tool-calls).
    assert len(by_event(w.fake.webhook_deliveries, "tool-calls")) == len(replies)


async def test_tool_with_its_own_server_gets_its_own_url_and_secret() -> None:
    async with world() as w:
        agent = await w.agent(
            **tools(
                {
                    "type": "function",
                    "function": {"name": "nested_tool", "parameters": {"type": "object"}},
                    "server": {"url": w.receiver.base + "/tools", "secret": "whsec_tool_own"},
                },
                {"name": "flat_tool", "description": "x", "url": w.receiver.base + "/flat"},
            )
        )
        w.receiver.responders["tool-calls"] = lambda path, message: answer(body={"result": path})
        call = await w.fake.simulate_inbound_call(
            await w.number(agent),
            caller=CALLER,
            tool_calls=[[{"name": "nested_tool"}, {"name": "flat_tool"}]],
            duration=2,
        )
        await call.wait()

    assert [t.result for t in call.tool_calls] == ["/tools", "/flat"]
    received = {path: (headers, body) for path, headers, body in w.receiver.received}
    headers, body = received["/tools"]
    own = verify(body, headers, "whsec_tool_own")
    assert isinstance(own, ToolCallsMessage)
    assert own.tool_call_list[0].function.name == "nested_tool"
    with pytest.raises(WebhookVerificationError):
        verify(body, headers, SECRET)
    headers, body = received["/flat"]  # no secret of its own: the agent's signs it
    flat = verify(body, headers, SECRET)
    assert isinstance(flat, ToolCallsMessage)
    assert flat.tool_call_list[0].function.name == "flat_tool"


async def test_async_tool_is_not_waited_for_and_its_message_is_spoken() -> None:
    async with world() as w:
        agent = await w.agent(
            **tools(
                {"name": "notify", "description": "x", "async": True, "async_response": "Ik stuur het door."}
            )
        )
        w.receiver.responders["tool-calls"] = lambda path, message: answer(body={"result": "ignored"})
        call = await w.fake.simulate_inbound_call(
            await w.number(agent), caller=CALLER, tool_calls=[{"name": "notify"}], duration=2
        )
        await call.wait()

    (outcome,) = call.tool_calls
    assert outcome.ok
    assert outcome.result is None
    assert outcome.spoken == "Ik stuur het door."
    assert outcome.delivery is not None
    assert outcome.delivery.status == 200  # sent all the same (wait() also waits for it)
    assert "Ik stuur het door." in [m["content"] for m in call.transcript]


async def test_tool_the_agent_does_not_have_or_cannot_reach() -> None:
    async with world() as w:
        agent = await w.agent(
            webhook_events=["end-of-call-report"],  # no tool-calls to the agent's webhook
            **tools({"name": "crm", "description": "x"}, {"type": "end_call"}),
        )
        call = await w.fake.simulate_inbound_call(
            await w.number(agent),
            caller=CALLER,
            tool_calls=[[{"name": "crm"}, {"name": "end_call"}, {"name": "typo"}]],
            duration=2,
        )
        await call.wait()

    assert [(t.error, t.delivery) for t in call.tool_calls] == [
        ("The tool 'crm' has no webhook to call.", None),
        ("The agent has no webhook tool named 'end_call'.", None),
        ("The agent has no webhook tool named 'typo'.", None),
    ]
    assert w.receiver.events() == ["end-of-call-report"]


async def test_unsigned_deliveries_without_a_secret() -> None:
    async with world() as w:
        agent = await w.agent(webhook_secret=None, **tools({"name": "crm", "description": "x"}))
        w.receiver.responders["tool-calls"] = lambda path, message: answer(body={"result": 1})
        call = await w.fake.simulate_inbound_call(
            await w.number(agent), caller=CALLER, tool_calls=[{"name": "crm"}], duration=2
        )
        await call.wait()

    assert call.tool_calls[0].result == 1
    assert w.receiver.received
    assert all("X-Webhook-Signature" not in headers for _, headers, _ in w.receiver.received)
    assert all(headers["X-Webhook-Timestamp"].isdigit() for _, headers, _ in w.receiver.received)


# -- the call itself ----------------------------------------------------------------------------------


async def test_inbound_call_record_usage_and_events() -> None:
    async with world() as w:
        agent = await w.agent()
        number_id = await w.number(agent)
        call = await w.fake.simulate_inbound_call(number_id, caller=CALLER, duration=4)
        assert call.id.startswith(f"call-_{CALLER}_")
        assert call.status == "ringing"
        await call.wait()
        fetched = await w.client.calls.get(call.id)  # the id needs URL-encoding ("+")
        usage = await w.client.usage.list()

    assert fetched.status == "ended"
    assert fetched.direction == "inbound"
    assert fetched.number_id == number_id
    assert fetched.assistant_phone == "+31850835037"
    assert fetched.duration_seconds == 4
    assert present(fetched.summary).startswith(f"Inbound call from {CALLER} lasted 4 seconds")
    assert present(usage.pagination).total == 1
    statuses = [
        json.loads(body)["message"]["call"]["status"]
        for _, headers, body in w.receiver.received
        if headers["X-Webhook-Event"] == "status-update"
    ]
    assert statuses == ["in-progress", "ended"]
    assert all(
        json.loads(body)["message"]["call"]["type"] == "inbound_phone_call"
        for _, _, body in w.receiver.received
    )
    assert w.fake.dialed() == []  # nobody was dialed


async def test_call_control_ends_an_inbound_call() -> None:
    async with world() as w:
        agent = await w.agent(**tools({"name": "crm", "description": "x"}))
        w.receiver.responders["tool-calls"] = lambda path, message: answer(body={"result": 1})
        call = await w.fake.simulate_inbound_call(
            await w.number(agent), caller=CALLER, tool_calls=[{"name": "crm"}] * 3, duration=600
        )
        while call.status != "in-progress":
            await w.fake.clock.sleep(0.5)
        await w.client.calls.end(call.id, message="Tot ziens.")
        await call.wait()

    assert call.status == "ended"
    assert call.record["end_reason"] == "api_end_call"
    assert len(call.tool_calls) < 3
    assert call.record["duration_seconds"] < 600


@pytest.mark.parametrize(
    ("setup", "status", "reason"),
    [
        ("no_agent", "failed", "no_agent"),
        ("inactive_agent", "failed", "agent_inactive"),
        ("inactive_number", "failed", "number_inactive"),
        ("no_credits", "rejected", "insufficient_credits"),
    ],
)
async def test_calls_that_are_not_answered(setup: str, status: str, reason: str) -> None:
    async with world() as w:
        agent = await w.agent(is_active=setup != "inactive_agent")
        number_id = await w.number(None if setup == "no_agent" else agent)
        if setup == "inactive_number":
            await w.client.numbers.update(number_id, is_active=False)
        if setup == "no_credits":
            w.fake.state.organization["minutes_balance"] = 0
        call = await w.fake.simulate_inbound_call(number_id, caller=CALLER, duration=2)
        await call.wait()

    assert call.status == status
    assert call.record["end_reason"] == reason
    assert call.record["duration_seconds"] == 0
    assert call.assistant_request is None
    assert "assistant-request" not in w.receiver.events()
    assert w.fake.state.usage_logs == []


async def test_bad_arguments_name_the_field() -> None:
    async with world() as w:
        number_id = await w.number(await w.agent())
        cases: list[tuple[dict[str, Any], str]] = [
            ({"number_id": "nope"}, "number_id: no registered number has the id 'nope'"),
            ({"caller": "0612345678"}, "caller: must be an E.164 phone number"),
            ({"duration": 0}, "duration: must be a positive number"),
            ({"tool_calls": "crm"}, "tool_calls: must be a list"),
            ({"tool_calls": [{"name": ""}]}, "tool_calls[0].name: must be a non-empty string"),
            ({"tool_calls": [{"name": "x", "args": {}}]}, "tool_calls[0].args: unknown key"),
            ({"tool_calls": [[{"name": "x"}, 5]]}, "tool_calls[0][1]: must be a mapping"),
            ({"tool_calls": [[]]}, "tool_calls[0]: must be a tool call"),
            (
                {"tool_calls": [{"name": "x", "arguments": {"v": float("nan")}}]},
                "tool_calls[0].arguments: must be JSON",
            ),
        ]
        for change, message in cases:
            arguments: dict[str, Any] = {"number_id": number_id, "caller": CALLER, **change}
            with pytest.raises(RequestValidationError) as info:
                await w.fake.simulate_inbound_call(
                    arguments.pop("number_id"), caller=arguments.pop("caller"), **arguments
                )
            assert str(info.value).startswith(message), (change, str(info.value))
        assert w.fake.state.calls == {}


async def test_seeded_fakes_run_the_same_call() -> None:
    transcripts = []
    for _ in range(2):
        async with world(seed=99) as w:
            agent = await w.agent(**tools({"name": "crm", "description": "x"}))
            w.receiver.responders["tool-calls"] = lambda path, message: answer(body={"result": "ja"})
            call = await w.fake.simulate_inbound_call(
                await w.number(agent), caller=CALLER, tool_calls=[{"name": "crm"}], duration=3
            )
            await call.wait()
            transcripts.append((call.id, call.tool_calls[0].id, call.transcript))
    assert transcripts[0] == transcripts[1]


# -- redelivery -------------------------------------------------------------------------------------


async def test_notifications_that_get_a_5xx_are_redelivered_unchanged() -> None:
    async with world(webhook_redeliveries=2) as w:
        w.receiver.responders["status-update"] = lambda path, message: answer(503)
        w.receiver.responders["end-of-call-report"] = lambda path, message: answer(400)
        call = await w.fake.simulate_inbound_call(await w.number(await w.agent()), caller=CALLER, duration=2)
        await call.wait()

    updates = by_event(w.fake.webhook_deliveries, "status-update")
    # Two status updates, each sent three times (1 + 2 redeliveries), in order.
    assert [(d.status, d.attempt) for d in updates] == [(503, 1), (503, 2), (503, 3)] * 2
    for first, again in ((updates[0], updates[1]), (updates[0], updates[2]), (updates[3], updates[5])):
        assert again.body == first.body
        assert again.headers == first.headers
        assert again.at > first.at
    # A 4xx is the receiver's final word: no redelivery.
    assert [(d.status, d.attempt) for d in by_event(w.fake.webhook_deliveries, "end-of-call-report")] == [
        (400, 1)
    ]


async def test_unreachable_receiver_is_retried_then_given_up() -> None:
    async with world(webhook_redeliveries=1) as w:
        agent = await w.agent(webhook_url="http://127.0.0.1:9/unreachable", webhook_events=["status-update"])
        call = await w.fake.simulate_inbound_call(await w.number(agent), caller=CALLER, duration=2)
        await call.wait()

    sent = w.fake.webhook_deliveries
    assert [(d.status, d.attempt) for d in sent] == [(None, 1), (None, 2)] * 2
    assert all(d.error for d in sent)
    assert call.status == "ended"


async def test_no_redelivery_when_turned_off() -> None:
    async with world(webhook_redeliveries=0) as w:
        w.receiver.responders["end-of-call-report"] = lambda path, message: answer(500)
        call = await w.fake.simulate_inbound_call(await w.number(await w.agent()), caller=CALLER, duration=2)
        await call.wait()

    assert [(d.status, d.attempt) for d in by_event(w.fake.webhook_deliveries, "end-of-call-report")] == [
        (500, 1)
    ]
