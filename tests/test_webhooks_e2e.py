"""End to end: FakeFlireo places a call for an agent whose webhook_url points at a running
WebhookRouter, and the router receives verified status-update and end-of-call-report events."""

from __future__ import annotations

import json
from typing import Any

from flireo_async import UNSET, AsyncFlireo
from flireo_async.models import AssistantOverride
from flireo_async.testing import FakeFlireo
from flireo_async.webhooks import (
    EndOfCallReportMessage,
    StatusUpdateMessage,
    WebhookRouter,
    verify,
)

SECRET = "whsec_e2e_5b1d0c"
DESTINATION = "+31612345678"


async def test_fake_call_delivers_verified_events_to_router() -> None:
    router = WebhookRouter(SECRET)
    statuses: list[StatusUpdateMessage] = []
    reports: list[EndOfCallReportMessage] = []
    router.status_update(statuses.append)
    router.end_of_call_report(reports.append)

    async with (
        await router.start(port=0) as server,
        FakeFlireo(speed=1000, rate_limit=None, seed=7) as fake,
        AsyncFlireo(
            api_key=fake.api_key, base_url=fake.url, rate_limit=None, strict_responses=True
        ) as client,
    ):
        agent = await client.agents.create(
            name="Support",
            webhook_url=server.url,
            webhook_secret=SECRET,
            webhook_events=["status-update", "end-of-call-report"],
        )
        placed = await client.calls.create(
            destination=DESTINATION,
            assistant_id=agent.id,
            assistant_override=AssistantOverride(metadata={"crm_id": "A-1042"}),
        )
        await fake.wait_calls_finished(timeout=20)
        deliveries = list(fake.webhook_deliveries)

    # Every delivery was signed by the fake, verified by the router and answered 204.
    assert [(d.event, d.status) for d in deliveries] == [
        ("status-update", 204),
        ("status-update", 204),
        ("end-of-call-report", 204),
    ]
    assert all(d.url == server.url for d in deliveries)

    assert [s.call.status for s in statuses] == ["in-progress", "ended"]
    assert all(s.call.id == placed.call_id for s in statuses)
    assert statuses[1].end_reason is not UNSET

    (report,) = reports
    assert isinstance(report, EndOfCallReportMessage)
    assert report.call.id == placed.call_id
    assert report.call.status == "ended"
    assert report.customer is not UNSET
    assert report.customer.number == DESTINATION
    assert report.duration_seconds >= 1
    assert report.summary
    assert report.messages is not UNSET
    assert report.messages
    assert report.assistant == {"metadata": {"crm_id": "A-1042"}}
    # The router saw exactly what the fake sent (raw bytes, re-verifiable with the secret).
    last = deliveries[-1]
    assert verify(last.body, last.headers, SECRET) == report


async def test_router_rejects_deliveries_signed_with_another_secret() -> None:
    router = WebhookRouter(SECRET)
    seen: list[Any] = []
    router.status_update(seen.append)
    router.end_of_call_report(seen.append)

    async with (
        await router.start(port=0) as server,
        FakeFlireo(speed=1000, rate_limit=None, seed=3) as fake,
        AsyncFlireo(
            api_key=fake.api_key, base_url=fake.url, rate_limit=None, strict_responses=True
        ) as client,
    ):
        agent = await client.agents.create(
            name="Misconfigured", webhook_url=server.url, webhook_secret="whsec_rotated_elsewhere"
        )
        await client.calls.create(destination=DESTINATION, assistant_id=agent.id)
        await fake.wait_calls_finished(timeout=20)
        deliveries = list(fake.webhook_deliveries)

    assert deliveries
    assert {d.status for d in deliveries} == {401}
    assert seen == []
    # The fake sends compact JSON; the router never needed to re-serialise it.
    assert json.loads(deliveries[0].body)["message"]["type"] == "status-update"
