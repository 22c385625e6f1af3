"""End to end through the SDK against the fake server: CRUD of every resource, the outbound
call lifecycle with signed webhooks, pagination, rate limits and every fault kind."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any, TypedDict

import pytest
from aiohttp import web

from flireo_async import (
    UNSET,
    APIConnectionError,
    APIResponseValidationError,
    AsyncFlireo,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InsufficientCreditsError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
)
from flireo_async.models import (
    AnalysisPlan,
    EndCallTemplateConfig,
    FunctionTemplateConfig,
    FunctionToolTemplate,
    LeadCreate,
    LLMConfig,
    StructuredDataPlan,
    TransferCallTemplateConfig,
    TransferCallToolTemplate,
    TransferDestination,
)
from flireo_async.testing import FakeFlireo
from flireo_async.webhooks._signature import compute_signature
from tests.typed import present

pytest_plugins = ["flireo_async.testing.pytest_plugin"]

DEST = "+31612345678"


class Schedule(TypedDict):
    schedule_start_time: str
    schedule_end_time: str
    timezone: str


SCHEDULE = Schedule(schedule_start_time="09:00:00", schedule_end_time="17:00:00", timezone="Europe/Amsterdam")


@pytest.fixture
def flireo_fake_options() -> dict[str, Any]:
    # Every response the fake sends in these tests is checked against the spec.
    return {"speed": 1000, "seed": 21, "validate_responses": True}


@pytest.fixture(autouse=True)
def _no_nonconforming_responses(request: pytest.FixtureRequest) -> Any:
    # Requested at setup so that the fake is torn down after this check.
    fake = request.getfixturevalue("flireo_fake") if "flireo_fake" in request.fixturenames else None
    yield
    if fake is not None:
        assert fake.response_problems == []


class Receiver:
    """A webhook receiver on loopback that records every delivery."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    def events(self) -> list[str]:
        return [json.loads(body)["message"]["type"] for _, body in self.received]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hooks", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hooks"
    yield rec
    await runner.cleanup()


# -- CRUD ---------------------------------------------------------------------------------------


async def test_agents_crud(flireo_client: AsyncFlireo, flireo_fake: FakeFlireo) -> None:
    client = flireo_client
    agent = await client.agents.create(
        name="Support", business_name="Acme", webhook_events=["end-of-call-report"]
    )
    assert agent.name == "Support"
    assert agent.is_active is True
    assert present(agent.stt_config).provider == "deepgram"  # filled in by the server
    assert (await client.agents.get(agent.id)).business_name == "Acme"
    updated = await client.agents.update(agent.id, business_name=None, first_message="Hallo")
    assert updated.business_name is None
    assert updated.first_message == "Hallo"
    assert updated.webhook_events == ["end-of-call-report"]
    assert [a.id for a in await client.agents.list()] == [agent.id]
    await client.agents.delete(agent.id)
    with pytest.raises(NotFoundError):
        await client.agents.get(agent.id)
    assert flireo_fake.state.agents == {}


async def test_tool_templates_crud(flireo_client: AsyncFlireo) -> None:
    client = flireo_client
    lookup = await client.tool_templates.create(
        name="Customer Lookup",
        tool_type="function",
        tool_config=FunctionTemplateConfig(
            name="lookup_customer", description="Find a customer", parameters={"type": "object"}
        ),
    )
    assert isinstance(lookup, FunctionToolTemplate)
    assert lookup.tool_config.name == "lookup_customer"
    transfer = await client.tool_templates.create(
        name="Transfer",
        tool_type="transfer_call",
        tool_config=TransferCallTemplateConfig(
            destinations=[TransferDestination(type="number", number="+31201234567", description="Sales")]
        ),
    )
    assert isinstance(transfer, TransferCallToolTemplate)
    hang_up = await client.tool_templates.create(
        name="hang_up", tool_type="end_call", tool_config=EndCallTemplateConfig()
    )
    assert len(await client.tool_templates.list()) == 3
    renamed = await client.tool_templates.update(lookup.id, description="CRM lookup")
    assert renamed.description == "CRM lookup"
    assert (await client.tool_templates.get(lookup.id)).name == "Customer Lookup"
    with pytest.raises(BadRequestError) as info:
        await client.tool_templates.create(
            name="not a tool name", tool_type="function", tool_config=FunctionTemplateConfig()
        )
    assert "tool_config.name" in str(info.value)
    for template in (lookup, transfer, hang_up):
        await client.tool_templates.delete(template.id)
    assert await client.tool_templates.list() == []


async def test_numbers_and_sip_trunks_crud(flireo_client: AsyncFlireo, flireo_fake: FakeFlireo) -> None:
    client = flireo_client
    agent = await client.agents.create(name="Support", business_name="Acme")
    trunk = await client.sip_trunks.create(
        name="Office PBX",
        provider="freepbx",
        address="pbx.acme.example",
        auth_username="flireo",
        auth_password="s3cret-trunk-pass",
        transport="tls",
    )
    assert trunk.transport == "tls"
    assert trunk.is_active is True
    raw = await client.with_raw_response.sip_trunks.get(trunk.id)
    assert "auth_password" not in json.dumps(flireo_fake.state.sip_trunks)
    assert raw.parsed.id == trunk.id
    number = await client.numbers.create(
        phone_number="+31850835037", agent_id=agent.id, transfer_trunk_id=trunk.id
    )
    assert (number.agent_name, number.business_name, number.transfer_trunk_name) == (
        "Support",
        "Acme",
        "Office PBX",
    )
    with pytest.raises(ConflictError):
        await client.numbers.create(phone_number="+31850835037")
    with pytest.raises(NotFoundError):
        await client.numbers.create(phone_number="+31850835038", agent_id="missing")
    number = await client.numbers.update(number.id, agent_id=None, name="Main line")
    assert number.agent_id is None
    assert number.agent_name is None
    assert number.name == "Main line"
    assert [n.id for n in await client.numbers.list()] == [number.id]
    assert [t.id for t in await client.sip_trunks.list()] == [trunk.id]
    await client.sip_trunks.delete(trunk.id)
    assert (await client.numbers.get(number.id)).transfer_trunk_id is None
    await client.numbers.delete(number.id)
    with pytest.raises(NotFoundError):
        await client.sip_trunks.get(trunk.id)
    assert await client.numbers.list() == []


async def test_analysis_templates_crud(flireo_client: AsyncFlireo) -> None:
    client = flireo_client
    template = await client.analysis_templates.create(
        name="Lead Qualification",
        system_prompt="Return JSON only.",
        user_prompt="Transcript: {transcript}",
        schema={"type": "object", "properties": {"budget": {"type": "boolean"}}},
    )
    assert template.description is None
    updated = await client.analysis_templates.update(template.id, description="Sales calls")
    assert updated.description == "Sales calls"
    assert updated.schema == template.schema
    assert [t.id for t in await client.analysis_templates.list()] == [template.id]
    await client.analysis_templates.delete(template.id)
    with pytest.raises(NotFoundError):
        await client.analysis_templates.get(template.id)


async def test_campaigns_and_leads_crud(flireo_client: AsyncFlireo) -> None:
    client = flireo_client
    agent = await client.agents.create(name="Sales")
    campaign = await client.campaigns.create(
        name="Q1",
        agent_id=agent.id,
        **SCHEDULE,
        system_message_template="Bel {{name}}.",
        leads=[LeadCreate(phone_number="+31611111111", variables={"name": "Jan"})],
    )
    assert (campaign.status, campaign.total_leads) == ("draft", 1)
    lead = await client.campaigns.add_lead(campaign.id, phone_number="+31622222222")
    assert (lead.status, lead.attempts, lead.call_id) == ("pending", 0, None)
    leads = [x async for x in client.campaigns.list_leads(campaign.id)]
    assert [x.phone_number for x in leads] == ["+31611111111", "+31622222222"]
    await client.campaigns.remove_lead(campaign.id, lead.id)
    assert (await client.campaigns.get(campaign.id)).total_leads == 1
    renamed = await client.campaigns.update(campaign.id, name="Q1 outreach", timezone="Europe/Brussels")
    assert (renamed.name, renamed.timezone, renamed.status) == ("Q1 outreach", "Europe/Brussels", "draft")
    with pytest.raises(BadRequestError):
        await client.campaigns.update(campaign.id, status="completed")
    with pytest.raises(NotFoundError):
        await client.campaigns.create(name="x", agent_id="missing", **SCHEDULE)
    assert [c.id for c in await client.campaigns.list()] == [campaign.id]
    await client.campaigns.delete(campaign.id)
    assert await client.campaigns.list() == []


async def test_byok_domains_organization_and_voices(
    flireo_client: AsyncFlireo, flireo_fake: FakeFlireo
) -> None:
    client = flireo_client
    keys = await client.byok.get()
    assert keys.resend_secret_id is None
    keys = await client.byok.add(provider="resend", api_key="re_123")
    assert isinstance(keys.resend_secret_id, str)
    assert keys.resend_secret_id.startswith("vault-secret-")
    providers = await client.byok.list_providers()
    assert {"deepgram", "openai", "elevenlabs"} <= {p.id for p in providers}

    assert await client.domains.get() is None
    domain = await client.domains.create(domain_name="mail.acme.example")
    assert domain is not None
    assert domain.status == "not_started"
    assert domain.records
    pending = await client.domains.verify()
    assert pending.domain is not UNSET
    assert pending.domain is not None
    assert pending.domain.status == "pending"
    flireo_fake.clock.advance(60)  # a simulated minute passes without waiting
    refreshed = await client.domains.refresh()
    assert refreshed is not None
    assert refreshed.status == "verified"
    assert refreshed.verified_at is not None
    resend = await client.domains.list_resend_domains()
    other = next(d for d in resend.domains if d.name == "mail.fake-org.example")
    assert resend.selected_domain_id == domain.resend_domain_id
    synced = await client.domains.sync_resend_domain(resend_domain_id=other.id)
    assert synced.domain_name == "mail.fake-org.example"
    await client.domains.delete()
    assert await client.domains.get() is None

    remaining = await client.byok.delete(provider="resend")
    assert remaining is not None
    assert remaining.resend_secret_id is None
    with pytest.raises(BadRequestError):
        await client.domains.list_resend_domains()  # no Resend key any more

    org = await client.organization.get(include_children=True)
    assert present(org.minutes_balance) > 0
    assert org.active_agents == 0
    assert org.children == []
    voices = await client.voices.list()
    assert any(v.id == "21m00Tcm4TlvDq8ikWAM" for v in voices)


# -- calls and webhooks -------------------------------------------------------------------------


async def test_outbound_call_lifecycle_with_signed_webhooks(
    flireo_client: AsyncFlireo, flireo_fake: FakeFlireo, receiver: Receiver
) -> None:
    client = flireo_client
    secret = "whsec_fake_1234"
    agent = await client.agents.create(
        name="Support",
        webhook_url=receiver.url,
        webhook_secret=secret,
        analysis_plan=AnalysisPlan(
            structured_data_plan=StructuredDataPlan(
                enabled=True,
                schema={
                    "type": "object",
                    "properties": {"sentiment": {"type": "integer", "minimum": 1, "maximum": 10}},
                },
            )
        ),
    )
    await client.numbers.create(phone_number="+31850835037", name="Main line")
    placed = await client.calls.create(destination=DEST, assistant_id=agent.id)
    assert placed.success is True
    assert placed.status == "dialing"
    await flireo_fake.wait_calls_finished(timeout=10)

    call = await client.calls.get(placed.call_id)
    assert call.status == "ended"
    assert call.direction == "outbound"
    assert isinstance(call.duration_seconds, int)
    assert 30 <= call.duration_seconds <= 180
    assert call.ended_at - call.started_at == timedelta(seconds=call.duration_seconds)  # type: ignore[operator]
    assert isinstance(call.analysis_result, dict)
    assert 1 <= call.analysis_result["sentiment"] <= 10

    assert receiver.events() == ["status-update", "status-update", "end-of-call-report"]
    for headers, body in receiver.received:
        timestamp = headers["X-Webhook-Timestamp"]
        assert headers["X-Webhook-Signature"] == "sha256=" + compute_signature(body, secret, timestamp)
        assert headers["X-Webhook-Event"] == json.loads(body)["message"]["type"]
    statuses = [json.loads(b)["message"]["call"]["status"] for _, b in receiver.received]
    assert statuses == ["in-progress", "ended", "ended"]
    report = json.loads(receiver.received[-1][1])["message"]
    assert report["call"] == {"id": placed.call_id, "type": "outbound_phone_call", "status": "ended"}
    assert report["customer"] == {"number": DEST}
    assert report["phone_number"]["name"] == "Main line"
    assert report["duration_seconds"] == call.duration_seconds
    assert report["summary"] == call.summary
    assert report["analysis"] == call.analysis_result

    page = await client.usage.list()
    assert [log.duration_sec for log in page.items] == [call.duration_seconds]
    assert present(page.response.summary).total_calls == 1


async def test_webhook_events_filter_unsigned_and_broken_receivers(
    flireo_client: AsyncFlireo, flireo_fake: FakeFlireo, receiver: Receiver
) -> None:
    client = flireo_client
    only_reports = await client.agents.create(
        name="A", webhook_url=receiver.url, webhook_events=["end-of-call-report"]
    )
    broken = await client.agents.create(name="B", webhook_url="http://127.0.0.1:9/unreachable")
    await client.calls.create(destination=DEST, assistant_id=only_reports.id)
    await client.calls.create(destination="+31687654321", assistant_id=broken.id)
    await flireo_fake.wait_calls_finished(timeout=10)
    assert receiver.events() == ["end-of-call-report"]
    headers, _ = receiver.received[0]
    assert "X-Webhook-Signature" not in headers
    assert headers["X-Webhook-Timestamp"].isdigit()
    failed = [d for d in flireo_fake.webhook_deliveries if d.url.endswith("/unreachable")]
    assert len([d for d in failed if d.attempt == 1]) == 3
    assert len(failed) == 3 * 4  # each notification redelivered 3 times (webhook_redeliveries)
    assert all(d.error and d.status is None for d in failed)
    assert (await client.organization.get()).active_calls == 0  # the server kept working


async def test_transient_assistant_metadata_reaches_webhooks(
    flireo_client: AsyncFlireo, flireo_fake: FakeFlireo, receiver: Receiver
) -> None:
    from flireo_async.models import STTConfig, TransientAssistant, TTSConfig

    await flireo_client.calls.create(
        destination=DEST,
        assistant=TransientAssistant(
            llm_config=LLMConfig(provider="openai", model="gpt-4o-mini"),
            stt_config=STTConfig(provider="deepgram", model="nova-3-general", language="nl"),
            tts_config=TTSConfig(provider="elevenlabs", voice_id="21m00Tcm4TlvDq8ikWAM"),
            first_message="Goedemiddag!",
            webhook_url=receiver.url,
            metadata={"crm_id": "A-1042"},
        ),
    )
    await flireo_fake.wait_calls_finished(timeout=10)
    report = json.loads(receiver.received[-1][1])["message"]
    assert report["assistant"] == {"metadata": {"crm_id": "A-1042"}}
    assert report["messages"][0] == {"role": "assistant", "content": "Goedemiddag!"}


@pytest.mark.parametrize("flireo_fake_options", [{"speed": 10, "validate_responses": True}])
async def test_call_control_through_the_sdk(flireo_client: AsyncFlireo, flireo_fake: FakeFlireo) -> None:
    client = flireo_client
    agent = await client.agents.create(name="Support")
    placed = await client.calls.create(destination=DEST, assistant_id=agent.id)
    with pytest.raises(BadRequestError):  # still connecting
        await client.calls.say(placed.call_id, "Hallo?")
    for _ in range(400):
        if flireo_fake.state.calls[placed.call_id]["status"] == "in-progress":
            break
        await __import__("asyncio").sleep(0.005)
    assert (await client.calls.inject_context(placed.call_id, "Klant is VIP", trigger_response=True)).success
    assert (await client.calls.say(placed.call_id, "Een moment alstublieft.")).success
    assert (await client.calls.end(placed.call_id, "Tot ziens!")).success
    await flireo_fake.wait_calls_finished(timeout=10)
    call = await client.calls.get(placed.call_id)
    assert call.status == "ended"
    assert call.end_reason == "api_end_call"
    assert call.messages[-1].content == "Tot ziens!"  # type: ignore[index]
    with pytest.raises(BadRequestError):
        await client.calls.end(placed.call_id)


async def test_insufficient_credits(flireo_client: AsyncFlireo, flireo_fake: FakeFlireo) -> None:
    agent = await flireo_client.agents.create(name="Support")
    flireo_fake.state.organization["minutes_balance"] = 0
    with pytest.raises(InsufficientCreditsError) as info:
        await flireo_client.calls.create(destination=DEST, assistant_id=agent.id)
    assert info.value.status == 402
    assert info.value.body["balance"] == 0
    assert flireo_fake.dialed() == []


# -- pagination ---------------------------------------------------------------------------------


async def test_calls_pagination_visits_every_call_once_in_order(flireo_fake: FakeFlireo) -> None:
    seeded = flireo_fake.seed_calls(250, direction="mixed")
    async with AsyncFlireo(
        api_key=flireo_fake.api_key,
        base_url=flireo_fake.url,
        rate_limit=None,
        strict_responses=True,
        prefetch=3,
    ) as client:
        ids = [call.id async for call in client.calls.list(limit=40)]
        assert ids == [c["id"] for c in reversed(seeded)]  # newest first
        pages = [page async for page in client.calls.list(limit=100).pages()]
    assert [len(p.items) for p in pages] == [100, 100, 50]
    assert [present(p.pagination).offset for p in pages] == [0, 100, 200]
    # Inbound ids carry "+": the SDK percent-encodes them and the fake decodes them.
    inbound = next(c for c in seeded if "+" in c["id"])
    async with AsyncFlireo(
        api_key=flireo_fake.api_key, base_url=flireo_fake.url, rate_limit=None, strict_responses=True
    ) as client:
        assert (await client.calls.get(inbound["id"])).id == inbound["id"]


async def test_usage_pagination_and_period_filter(
    flireo_client: AsyncFlireo, flireo_fake: FakeFlireo
) -> None:
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    seeded = flireo_fake.seed_usage_logs(2345, start=start)
    ids = [log.id async for log in flireo_client.usage.list(limit=1000)]
    assert ids == [log["id"] for log in reversed(seeded)]
    assert len(flireo_fake.requests_for("getUsage")) == 3
    window = flireo_client.usage.list(
        start_date=start + timedelta(minutes=10), end_date=start + timedelta(minutes=19)
    )
    page = await window
    assert len(page.items) == 10
    assert present(page.pagination).total == 10
    assert present(page.response.summary).total_duration_seconds == sum(
        log["duration_sec"] for log in seeded[10:20]
    )


async def test_leads_pagination(flireo_client: AsyncFlireo) -> None:
    agent = await flireo_client.agents.create(name="Sales")
    phones = [f"+316500{i:05d}" for i in range(130)]
    campaign = await flireo_client.campaigns.create(
        name="Big", agent_id=agent.id, **SCHEDULE, leads=[LeadCreate(phone_number=p) for p in phones]
    )
    seen = [lead.phone_number async for lead in flireo_client.campaigns.list_leads(campaign.id, limit=40)]
    assert seen == phones


@pytest.mark.parametrize("flireo_fake_options", [{"leads_pagination": False}])
async def test_leads_without_pagination_are_one_complete_page(flireo_client: AsyncFlireo) -> None:
    agent = await flireo_client.agents.create(name="Sales")
    campaign = await flireo_client.campaigns.create(
        name="All",
        agent_id=agent.id,
        **SCHEDULE,
        leads=[LeadCreate(phone_number=f"+3166000{i:04d}") for i in range(25)],
    )
    page = await flireo_client.campaigns.list_leads(campaign.id, limit=10)
    assert page.pagination is None
    assert len(page.items) == 25
    assert len([lead async for lead in flireo_client.campaigns.list_leads(campaign.id, limit=10)]) == 25


# -- rate limits, auth, faults ------------------------------------------------------------------


async def test_rate_limit_headers_and_429_through_the_sdk() -> None:
    async with (
        FakeFlireo(rate_limit=5, speed=1000) as fake,
        AsyncFlireo(
            api_key=fake.api_key, base_url=fake.url, rate_limit=None, strict_responses=True, max_retries=0
        ) as client,
    ):
        raw = await client.with_raw_response.voices.list()
        assert (raw.rate_limit.limit, raw.rate_limit.remaining) == (5, 4)
        assert raw.rate_limit.reset is not None
        assert raw.rate_limit.reset >= datetime.now().timestamp() + 55
        for _ in range(4):
            await client.voices.list()
        with pytest.raises(RateLimitError) as info:
            await client.voices.list()
        assert info.value.retry_after is not None
        assert 55 <= info.value.retry_after <= 60
        assert [r.status for r in fake.requests] == [200] * 5 + [429]


async def test_wrong_key_is_authentication_error(flireo_fake: FakeFlireo) -> None:
    async with AsyncFlireo(
        api_key="fl_test_wrong", base_url=flireo_fake.url, rate_limit=None, strict_responses=True
    ) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.agents.list()
    assert info.value.status == 401
    assert info.value.message == "Unauthorized: Invalid or missing API key"


async def test_dropped_outbound_call_is_not_retried_and_was_processed(
    flireo_client: AsyncFlireo, flireo_fake: FakeFlireo
) -> None:
    agent = await flireo_client.agents.create(name="Support")
    flireo_fake.inject("createOutboundCall", drop_after_processing=1.0)
    with pytest.raises(APIConnectionError) as info:
        await flireo_client.calls.create(destination=DEST, assistant_id=agent.id)
    assert info.value.sent is not False
    assert flireo_fake.dialed() == [DEST]  # the call went out although the client saw an error
    assert len(flireo_fake.requests_for("createOutboundCall")) == 1
    flireo_fake.clear_faults()
    assert [c.caller_phone async for c in flireo_client.calls.list()] == [DEST]


async def test_5xx_on_outbound_is_not_retried_and_dials_nobody(
    flireo_client: AsyncFlireo, flireo_fake: FakeFlireo
) -> None:
    agent = await flireo_client.agents.create(name="Support")
    flireo_fake.inject("createOutboundCall", status_5xx=1.0)
    with pytest.raises(InternalServerError):
        await flireo_client.calls.create(destination=DEST, assistant_id=agent.id)
    assert len(flireo_fake.requests_for("createOutboundCall")) == 1
    assert flireo_fake.dialed() == []


async def test_injected_faults_on_reads_are_retried(
    flireo_client: AsyncFlireo, flireo_fake: FakeFlireo
) -> None:
    agent = await flireo_client.agents.create(name="Support")
    flireo_fake.inject("getAgent", status_5xx=1.0, times=1)
    raw = await flireo_client.with_raw_response.agents.get(agent.id)
    assert raw.attempts == 2
    assert raw.parsed.id == agent.id
    flireo_fake.inject("listAgents", drop_after_processing=1.0, times=1)
    assert [a.id for a in await flireo_client.agents.list()] == [agent.id]


async def test_injected_429_on_outbound_is_retried_once_and_dials_once(
    flireo_client: AsyncFlireo, flireo_fake: FakeFlireo
) -> None:
    agent = await flireo_client.agents.create(name="Support")
    flireo_fake.inject("createOutboundCall", status_429=1.0, retry_after=0, times=1)
    raw = await flireo_client.with_raw_response.calls.create(destination=DEST, assistant_id=agent.id)
    assert raw.attempts == 2
    assert [r.status for r in flireo_fake.requests_for("createOutboundCall")] == [429, 200]
    assert flireo_fake.dialed() == [DEST]


async def test_malformed_json_is_response_validation_error(
    flireo_client: AsyncFlireo, flireo_fake: FakeFlireo
) -> None:
    flireo_fake.inject("createAgent", malformed_json=1.0)
    with pytest.raises(APIResponseValidationError):
        await flireo_client.agents.create(name="Half")
    assert [a["name"] for a in flireo_fake.state.agents.values()] == ["Half"]  # processed nonetheless


async def test_latency_fault_meets_client_timeout(flireo_fake: FakeFlireo) -> None:
    from flireo_async import APITimeoutError

    flireo_fake.inject("listVoices", latency=0.5)
    async with AsyncFlireo(
        api_key=flireo_fake.api_key,
        base_url=flireo_fake.url,
        rate_limit=None,
        strict_responses=True,
        timeout=0.1,
        max_retries=0,
    ) as client:
        with pytest.raises(APITimeoutError):
            await client.voices.list()


# -- isolation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("run", [1, 2])
async def test_fixture_state_is_isolated(
    flireo_client: AsyncFlireo, flireo_fake: FakeFlireo, run: int
) -> None:
    # Whichever run goes second would see the first run's agent if state leaked.
    assert await flireo_client.agents.list() == []
    assert flireo_fake.requests[0].operation_id == "listAgents"
    await flireo_client.agents.create(name=f"Run {run}")
    await flireo_client.calls.create(destination=DEST, assistant_id=next(iter(flireo_fake.state.agents)))
    assert flireo_fake.dialed() == [DEST]


async def test_two_fakes_do_not_share_state() -> None:
    async with FakeFlireo(rate_limit=None) as one, FakeFlireo(rate_limit=None) as two:
        async with AsyncFlireo(
            api_key=one.api_key, base_url=one.url, rate_limit=None, strict_responses=True
        ) as client:
            await client.agents.create(name="Only in one")
        assert len(one.state.agents) == 1
        assert two.state.agents == {}
        assert one.url != two.url
