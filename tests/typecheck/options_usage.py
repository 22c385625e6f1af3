"""Checked by mypy (`make lint` covers tests/), never run: the per-call options keep every overload
of the generated methods precise, and wrong option types are errors. Each ``type: ignore``
must be needed: mypy's strict mode reports one that is not."""

from __future__ import annotations

from typing import Any

from typing_extensions import assert_type

from flireo_async import AsyncFlireo, AsyncPaginator, Page, RawResponse
from flireo_async.models import Agent, AgentCreate, Call, CallControlResponse, CallList, OutboundCallResponse


async def per_call_options(client: AsyncFlireo) -> None:
    options = {"timeout": 5.0}
    assert_type(await client.agents.get("a1", timeout=5, extra_headers={"X-A": "1"}), Agent)
    assert_type(await client.agents.create(AgentCreate(name="S"), extra_body={"beta": True}), Agent)
    assert_type(await client.agents.create(name="S", timeout=2.5, extra_query={"n": 1, "on": True}), Agent)
    assert_type(
        await client.calls.create(destination="+31612345678", assistant_id="a1", extra_headers={}),
        OutboundCallResponse,
    )
    assert_type(await client.calls.say("c1", "hi", timeout=1), CallControlResponse)
    assert_type(await client.calls.end("c1", extra_body={}), CallControlResponse)
    assert_type(client.calls.list(status="ended", timeout=10), AsyncPaginator[Call, CallList])
    page = await client.calls.list(extra_headers={"X-Job": "1"})
    assert_type(page, Page[Call, CallList])
    assert_type(page.has_next_page(), bool)
    assert_type(await page.next_page(), Page[Call, CallList])
    assert_type(await client.with_raw_response.agents.get("a1", timeout=5), RawResponse[Agent])
    assert_type(await client.with_raw_response.calls.list(extra_query={"x": "y"}), RawResponse[CallList])
    AsyncFlireo(default_headers={"X-Team": "sales"}).with_options(default_headers={"X-Env": "prod"})

    await client.agents.get("a1", timeout="5")  # type: ignore[arg-type]
    await client.agents.get("a1", extra_headers={"X-A": 1})  # type: ignore[dict-item]
    await client.agents.get("a1", extra_query={"n": None})  # type: ignore[dict-item]
    await client.agents.get("a1", 5.0)  # type: ignore[call-arg]
    await client.agents.create(AgentCreate(name="S"), 5.0)  # type: ignore[call-overload]
    await client.agents.create(name="S", timeout=options)  # type: ignore[call-overload]


def models_serialise(agent: Agent) -> None:
    assert_type(agent.to_dict(), dict[str, Any])
    assert_type(agent.to_json(indent=2), str)
    assert_type(Agent.from_dict(agent.to_dict()), Agent)
