"""End to end: FakeFlireo rings an inbound call whose agent points at a running WebhookRouter.

All four events travel for real (signed by the fake, verified by the router): assistant-request,
tool-calls, status-update and end-of-call-report. The fake runs 20 times real time, so the
platform's 5 s and 10 s deadlines last 0.25 s and 0.5 s; tests that need a deadline to pass
wait on the fake's clock, never on a real 5 or 10 seconds.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from flireo_async import AsyncFlireo
from flireo_async.models import Agent, Number
from flireo_async.testing import FakeFlireo
from flireo_async.webhooks import (
    AssistantRequestMessage,
    EndOfCallReportMessage,
    StatusUpdateMessage,
    ToolError,
    ToolInvocation,
    WebhookRouter,
    verify,
)
from tests.typed import present

SECRET = "whsec_inbound_e2e_41c2"
CALLER = "+31612345678"
NUMBER = "+31850835037"
SPEED = 20.0
"""Simulated seconds per real second: the 10 s tool deadline is 0.5 real seconds."""
CUSTOMER = {"name": "Jan de Vries", "email": "jan@example.com"}

TOOLS: list[dict[str, Any]] = [
    {
        "name": "lookup_customer",
        "description": "Find the caller in the CRM",
        "parameters": {"type": "object", "properties": {"phone": {"type": "string"}}},
    },
    {"name": "book_appointment", "description": "Book a slot", "message": "Een moment, ik boek het."},
    {"name": "slow_tool", "description": "Takes its time"},
    {"type": "end_call"},
]


class Setup:
    """A router on a loopback server, a fake, a client, and an agent + number pointing at it."""

    def __init__(self, router: WebhookRouter, url: str, fake: FakeFlireo, client: AsyncFlireo) -> None:
        self.router = router
        self.url = url
        self.fake = fake
        self.client = client
        self.agent: Agent
        self.number: Number

    async def create(self, **agent_fields: Any) -> None:
        fields: dict[str, Any] = {
            "name": "Support",
            "first_message": "Goedemiddag, met Acme.",
            "webhook_url": self.url,
            "webhook_secret": SECRET,
            "llm_config": {"provider": "openai", "model": "gpt-4o-mini", "tools": TOOLS},
            **agent_fields,
        }
        self.agent = await self.client.agents.create(**fields)
        self.number = await self.client.numbers.create(phone_number=NUMBER, agent_id=self.agent.id)


@asynccontextmanager
async def running(
    router: WebhookRouter,
    *,
    middlewares: tuple[Callable[..., Awaitable[web.StreamResponse]], ...] = (),
    **fake_options: Any,
) -> AsyncIterator[Setup]:
    app = web.Application(middlewares=list(middlewares))
    router.add_to(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with (
            FakeFlireo(speed=SPEED, rate_limit=None, seed=11, **fake_options) as fake,
            AsyncFlireo(api_key=fake.api_key, base_url=fake.url, rate_limit=None) as client,
        ):
            setup = Setup(router, f"http://127.0.0.1:{port}/flireo/webhook", fake, client)
            await setup.create()
            yield setup
    finally:
        await runner.cleanup()


def events(fake: FakeFlireo) -> list[tuple[str, int | None]]:
    return [(d.event, d.status) for d in fake.webhook_deliveries]


async def test_inbound_call_delivers_all_four_events_to_the_router() -> None:
    router = WebhookRouter(SECRET)
    requests: list[AssistantRequestMessage] = []
    tools: list[ToolInvocation] = []
    statuses: list[StatusUpdateMessage] = []
    reports: list[EndOfCallReportMessage] = []
    vip: dict[str, str] = {}

    @router.assistant_request
    async def choose(event: AssistantRequestMessage) -> dict[str, Any]:
        requests.append(event)
        return {
            "assistant_id": vip["id"],
            "assistant_override": {"first_message": "Hallo Jan!", "metadata": {"crm_id": "A-1042"}},
        }

    @router.tool("lookup_customer")
    async def lookup(tool: ToolInvocation) -> dict[str, str]:
        tools.append(tool)
        return CUSTOMER

    router.status_update(statuses.append)
    router.end_of_call_report(reports.append)

    async with running(router) as s:
        # A plain dict for the nested config, as untyped callers pass it.
        other = await s.client.agents.create(  # type: ignore[call-overload]
            name="VIP desk",
            webhook_url=s.url,
            webhook_secret=SECRET,
            llm_config={"provider": "openai", "model": "gpt-4o", "tools": TOOLS[:1]},
        )
        vip["id"] = other.id
        call = await s.fake.simulate_inbound_call(
            s.number.id,
            caller=CALLER,
            tool_calls=[{"name": "lookup_customer", "arguments": {"phone": CALLER}}],
            duration=5,
        )
        assert call.status == "ringing"
        await call.wait()
        fetched = await s.client.calls.get(call.id)
        deliveries = list(s.fake.webhook_deliveries)

    # assistant-request: sent while ringing, about this caller and number; the reply was used.
    (request,) = requests
    assert request.call.id == call.id
    assert request.call.status == "ringing"
    assert request.call.type == "inbound_phone_call"
    assert present(request.customer).number == CALLER
    assert present(request.phone_number).number == NUMBER
    assert call.assistant_request is not None
    assert call.assistant_request.answer == "assistant_id"
    assert call.assistant_request.agent_id == other.id
    assert call.config["first_message"] == "Hallo Jan!"
    assert call.config["llm_config"]["model"] == "gpt-4o"

    # tool-calls: the router ran the tool with the arguments; the fake recorded its result.
    (invocation,) = tools
    assert invocation.arguments == {"phone": CALLER}
    assert invocation.call.id == call.id
    assert invocation.call.status == "in-progress"
    (outcome,) = call.tool_calls
    assert outcome.id == invocation.id
    assert outcome.ok
    assert outcome.result == CUSTOMER
    assert outcome.delivery is not None
    assert outcome.delivery.status == 200

    # status-update and end-of-call-report, with the metadata the reply set.
    assert [u.call.status for u in statuses] == ["in-progress", "ended"]
    (report,) = reports
    assert report.call.id == call.id
    assert report.call.type == "inbound_phone_call"
    assert present(report.customer).number == CALLER
    assert report.assistant == {"metadata": {"crm_id": "A-1042"}}
    assert report.duration_seconds >= 5
    assert "Jan de Vries" in str(report.messages)

    # The REST view agrees.
    assert fetched.status == "ended"
    assert fetched.direction == "inbound"
    assert fetched.caller_phone == CALLER
    assert fetched.agent_id == other.id
    assert present(fetched.messages)[0].content == "Hallo Jan!"

    assert [(d.event, d.status) for d in deliveries] == [
        ("assistant-request", 200),
        ("status-update", 204),
        ("tool-calls", 200),
        ("status-update", 204),
        ("end-of-call-report", 204),
    ]
    # Every delivery is signed with the agent's secret and verifies as sent.
    assert all(verify(d.body, d.headers, SECRET) for d in deliveries)


async def test_tool_that_raises_and_tool_error_are_spoken() -> None:
    router = WebhookRouter(SECRET)

    @router.tool("lookup_customer")
    async def lookup(tool: ToolInvocation) -> dict[str, str]:
        raise ToolError("Klant niet gevonden")

    @router.tool("book_appointment")
    async def book(tool: ToolInvocation) -> dict[str, str]:
        raise RuntimeError("database password=hunter2 rejected")

    async with running(router) as s:
        call = await s.fake.simulate_inbound_call(
            s.number.id,
            caller=CALLER,
            # One round with both tools: one delivery, answered once both have finished.
            tool_calls=[
                [{"name": "lookup_customer"}, {"name": "book_appointment", "arguments": {"day": "mon"}}]
            ],
            duration=3,
        )
        await call.wait()

    lookup_outcome, book_outcome = call.tool_calls
    assert lookup_outcome.delivery is book_outcome.delivery
    assert lookup_outcome.error == "Klant niet gevonden"
    assert book_outcome.error == "The tool 'book_appointment' failed."
    assert book_outcome.result == {"error": "The tool 'book_appointment' failed."}
    spoken = [m["content"] for m in call.transcript if m["role"] == "assistant"]
    assert "Een moment, ik boek het." in spoken  # the tool's own message, while it runs
    assert "Excuses, dat lukte niet: Klant niet gevonden" in spoken
    assert "Excuses, dat lukte niet: The tool 'book_appointment' failed." in spoken
    assert "hunter2" not in str(call.transcript)
    assert call.status == "ended"


async def test_tool_that_times_out_in_the_router_gets_an_error_result() -> None:
    # Deadlines scaled to the fake's clock: the router answers 0.2 s (real) before the fake's
    # 10 simulated seconds run out, the way it answers 0.5 s early in production.
    router = WebhookRouter(
        SECRET,
        tool_calls_deadline=10 / SPEED,
        assistant_request_deadline=5 / SPEED,
        deadline_margin=0.2,
    )
    cancelled = asyncio.Event()

    @router.tool("slow_tool")
    async def slow(tool: ToolInvocation) -> str:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()
        return "never"

    @router.tool("lookup_customer")
    async def lookup(tool: ToolInvocation) -> dict[str, str]:
        return CUSTOMER

    async with running(router) as s:
        call = await s.fake.simulate_inbound_call(
            s.number.id,
            caller=CALLER,
            tool_calls=[[{"name": "slow_tool"}, {"name": "lookup_customer"}]],
            duration=3,
        )
        await call.wait()

    slow_outcome, lookup_outcome = call.tool_calls
    assert cancelled.is_set()
    assert slow_outcome.delivery is not None
    assert not slow_outcome.delivery.timed_out
    assert slow_outcome.delivery.status == 200
    assert slow_outcome.error == "The tool 'slow_tool' did not answer in time."
    assert lookup_outcome.result == CUSTOMER  # the tool that finished keeps its result
    assert call.status == "ended"


async def test_tool_answering_after_the_deadline_is_a_platform_tool_error() -> None:
    router = WebhookRouter(SECRET)  # production deadlines: the fake's 10 s (0.5 s real) pass first
    release = asyncio.Event()

    @router.tool("slow_tool")
    async def slow(tool: ToolInvocation) -> str:
        await release.wait()
        return "too late"

    async with running(router) as s:
        call = await s.fake.simulate_inbound_call(
            s.number.id, caller=CALLER, tool_calls=[{"name": "slow_tool"}], duration=3
        )
        while not call.tool_calls:
            await s.fake.clock.sleep(1)
        release.set()
        await call.wait()

    (outcome,) = call.tool_calls
    assert outcome.delivery is not None
    assert outcome.delivery.timed_out
    assert outcome.delivery.status is None
    assert outcome.result is None
    assert outcome.error == "The tool 'slow_tool' did not answer within 10 seconds."
    assert f"Excuses, dat lukte niet: {outcome.error}" in str(call.transcript)
    assert call.status == "ended"  # the call goes on without the tool


async def test_rejected_inbound_call() -> None:
    router = WebhookRouter(SECRET)
    statuses: list[StatusUpdateMessage] = []
    reports: list[EndOfCallReportMessage] = []
    ran: list[str] = []

    @router.assistant_request
    async def closed(event: AssistantRequestMessage) -> dict[str, str]:
        return {"error": "We zijn gesloten. Bel morgen na 9 uur."}

    @router.tool("lookup_customer")
    async def lookup(tool: ToolInvocation) -> str:
        ran.append(tool.id)
        return "never"

    router.status_update(statuses.append)
    router.end_of_call_report(reports.append)

    async with running(router) as s:
        call = await s.fake.simulate_inbound_call(
            s.number.id, caller=CALLER, tool_calls=[{"name": "lookup_customer"}], duration=3
        )
        await call.wait()
        fetched = await s.client.calls.get(call.id)
        deliveries = events(s.fake)

    assert call.assistant_request is not None
    assert call.assistant_request.answer == "rejected"
    assert call.assistant_request.reason == "We zijn gesloten. Bel morgen na 9 uur."
    assert call.status == "rejected"
    assert call.tool_calls == []
    assert ran == []
    assert fetched.status == "rejected"
    assert fetched.duration_seconds == 0
    assert [m.content for m in present(fetched.messages)] == ["We zijn gesloten. Bel morgen na 9 uur."]
    assert [u.call.status for u in statuses] == ["rejected"]
    assert reports == []
    assert deliveries == [("assistant-request", 200), ("status-update", 204)]


async def test_assistant_request_answered_late_falls_back_to_the_saved_agent() -> None:
    router = WebhookRouter(SECRET)
    release = asyncio.Event()

    @router.assistant_request
    async def slow(event: AssistantRequestMessage) -> dict[str, Any]:
        await release.wait()
        return {"assistant": {"first_message": "Te laat"}}

    async with running(router) as s:
        call = await s.fake.simulate_inbound_call(s.number.id, caller=CALLER, duration=2)
        while call.status == "ringing":
            await s.fake.clock.sleep(1)
        release.set()
        await call.wait()

    outcome = call.assistant_request
    assert outcome is not None
    assert outcome.answer == "fallback"
    assert outcome.reason == "no answer within 5 seconds"
    assert outcome.delivery.timed_out
    assert call.transcript[0] == {"role": "assistant", "content": "Goedemiddag, met Acme."}
    assert call.status == "ended"


async def test_redelivered_end_of_call_report_is_handled_once() -> None:
    router = WebhookRouter(SECRET)
    reports: list[EndOfCallReportMessage] = []
    router.end_of_call_report(reports.append)
    lost: list[int] = []

    @web.middleware
    async def gateway_loses_first_report(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        # The router handles the report, but the answer is lost on the way back (a proxy's
        # 502): the platform redelivers, and the router must not handle it a second time.
        response = await handler(request)
        if request.headers.get("X-Webhook-Event") == "end-of-call-report" and not lost:
            lost.append(response.status)
            return web.Response(status=502)
        return response

    async with running(router, middlewares=(gateway_loses_first_report,)) as s:
        call = await s.fake.simulate_inbound_call(s.number.id, caller=CALLER, duration=2)
        await call.wait()
        sent = [d for d in s.fake.webhook_deliveries if d.event == "end-of-call-report"]

    assert lost == [204]
    assert [(d.status, d.attempt) for d in sent] == [(502, 1), (204, 2)]
    first, again = sent
    assert again.body == first.body
    assert again.headers == first.headers  # same timestamp, same signature
    assert len(reports) == 1
    assert reports[0].call.id == call.id


async def test_report_whose_handler_failed_is_handled_again_when_redelivered() -> None:
    router = WebhookRouter(SECRET)
    attempts: list[str] = []

    @router.end_of_call_report
    async def flaky(event: EndOfCallReportMessage) -> None:
        attempts.append(event.call.id)
        if len(attempts) == 1:
            raise ConnectionError("CRM unavailable")

    async with running(router) as s:
        call = await s.fake.simulate_inbound_call(s.number.id, caller=CALLER, duration=2)
        await call.wait()
        sent = [(d.status, d.attempt) for d in s.fake.webhook_deliveries if d.event == "end-of-call-report"]

    assert sent == [(500, 1), (204, 2)]
    assert attempts == [call.id, call.id]


def test_documented_inbound_example_runs() -> None:
    guide = (Path(__file__).resolve().parent.parent / "docs" / "guide" / "testing.md").read_text()
    section = guide[guide.index("## Inbound calls: assistant-request") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    result = subprocess.run(
        [sys.executable, "-c", match.group(1)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["ended assistant Jan de Vries"]
