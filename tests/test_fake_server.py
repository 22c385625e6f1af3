"""The fake Flireo server over raw HTTP: routing, auth, validation, rate limits, faults,
simulation details, the process and thread forms. (SDK-level tests: test_fake_e2e.py.)"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from flireo_async.testing import FakeFlireo, load_spec, run_in_thread, serve
from flireo_async.testing._cli import build_parser
from flireo_async.testing._handlers import Handlers
from flireo_async.testing._validation import SpecIndex

from .conftest import free_port

SPEC = load_spec()

pytest_plugins = ["flireo_async.testing.pytest_plugin"]

ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
CAMPAIGN = {
    "schedule_start_time": "09:00:00",
    "schedule_end_time": "17:00:00",
    "timezone": "Europe/Amsterdam",
}


class Http:
    """A tiny raw client: the SDK validates before sending, these tests must not."""

    def __init__(self, fake: FakeFlireo, session: aiohttp.ClientSession) -> None:
        self.fake = fake
        self.session = session

    async def __call__(
        self, method: str, path: str, *, key: str | None = "default", raw: bytes | None = None, **kw: Any
    ) -> tuple[int, Any, Any]:
        headers = (
            {}
            if key is None
            else {"Authorization": f"Bearer {self.fake.api_key if key == 'default' else key}"}
        )
        if raw is not None:
            kw["data"] = raw
            headers["Content-Type"] = "application/json"
        async with self.session.request(method, self.fake.url + path, headers=headers, **kw) as resp:
            text = await resp.text()
            try:
                body = json.loads(text) if text else None
            except ValueError:
                body = text
            return resp.status, body, resp.headers


@pytest.fixture
async def fake() -> AsyncIterator[FakeFlireo]:
    async with FakeFlireo(speed=1000, rate_limit=None, seed=11, validate_responses=True) as server:
        yield server
        assert server.response_problems == []


@pytest.fixture
async def http(fake: FakeFlireo) -> AsyncIterator[Http]:
    async with aiohttp.ClientSession() as session:
        yield Http(fake, session)


async def make_agent(http: Http, **fields: Any) -> dict[str, Any]:
    status, body, _ = await http("POST", "/assistants", json={"name": "Agent", **fields})
    assert status == 201, body
    return dict(body["assistant"])


# -- routing ------------------------------------------------------------------------------------


def test_every_spec_operation_has_a_handler() -> None:
    index = SpecIndex(SPEC)
    ids = {route.operation_id for route in index.routes}
    assert len(ids) == 50
    assert ids == set(Handlers.OPERATION_IDS)
    assert index.base_path == "/api/v1"


def test_routes_resolve_literals_before_templates_and_decode_ids() -> None:
    index = SpecIndex(SPEC)
    route, params, _ = index.resolve("POST", "/calls/outbound")
    assert route is not None
    assert route.operation_id == "createOutboundCall"
    route, params, _ = index.resolve("GET", "/calls/call-_%2B31612345678_Xq%2FaQ")
    assert route is not None
    assert route.operation_id == "getCall"
    assert params == {"id": "call-_+31612345678_Xq/aQ"}
    route, params, _ = index.resolve("DELETE", "/campaigns/c1/leads/l%201")
    assert route is not None
    assert route.operation_id == "removeCampaignLead"
    assert params == {"id": "c1", "lead_id": "l 1"}
    route, _, allowed = index.resolve("PUT", "/assistants/x")
    assert route is None
    assert sorted(allowed) == ["DELETE", "GET", "PATCH"]


async def test_unknown_path_is_404_and_wrong_method_405(http: Http) -> None:
    status, body, _ = await http("GET", "/nothing-here")
    assert status == 404
    assert body["error"] == "Not found"
    status, body, headers = await http("PUT", "/assistants/abc", json={})
    assert status == 405
    assert headers["Allow"] == "DELETE, GET, PATCH"


# -- auth and validation ------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "fl_test_wrong", ""])
async def test_wrong_or_missing_key_is_401_with_flat_body(http: Http, key: str | None) -> None:
    status, body, _ = await http("GET", "/assistants", key=key)
    assert status == 401
    assert body == {"error": "Unauthorized", "message": "Invalid or missing API key"}
    assert http.fake.requests[-1].status == 401


async def test_validation_error_names_the_missing_field(http: Http) -> None:
    status, body, _ = await http("POST", "/assistants", json={})
    assert status == 400
    assert body == {
        "error": "Validation failed",
        "message": "name: required field is missing",
        "details": ["name: required field is missing"],
    }
    assert http.fake.state.agents == {}


@pytest.mark.parametrize(
    ("path", "payload", "detail"),
    [
        ("/assistants", {"name": 5}, "name: must be a string"),
        (
            "/assistants",
            {"name": "x", "llm_config": {"provider": "openai"}},
            "llm_config.model: required field is missing",
        ),
        ("/assistants", {"name": "x", "is_active": "yes"}, "is_active: must be a boolean"),
        ("/numbers", {}, "phone_number: required field is missing"),
        ("/numbers", {"phone_number": "0612345678"}, "phone_number: must be in E.164 format"),
        ("/calls/outbound", {"destination": "+31612345678"}, "assistant_id: required"),
        (
            "/calls/outbound",
            {"destination": "31612", "assistant_id": "a"},
            "destination: must be in E.164 format",
        ),
        ("/campaigns", {"name": "c"}, "agent_id: required field is missing"),
        ("/byok", {"provider": "openai"}, "api_key: required field is missing"),
        (
            "/tool-templates",
            {"name": "t", "tool_type": "transfer_call", "tool_config": {}},
            "tool_config.destinations: at least one destination is required",
        ),
    ],
)
async def test_validation_errors_name_the_field_path(
    http: Http, path: str, payload: Any, detail: str
) -> None:
    status, body, _ = await http("POST", path, json=payload)
    assert status == 400, body
    assert body["error"] == "Validation failed"
    assert any(d.startswith(detail) for d in body["details"]), body
    assert body["message"].startswith(body["details"][0])


async def test_control_command_type_is_checked_against_the_discriminator(http: Http) -> None:
    http.fake.seed_calls(1)
    call_id = next(iter(http.fake.state.calls))
    status, body, _ = await http("POST", f"/calls/{call_id}/control", json={"type": "dance"})
    assert status == 400
    assert body["details"] == ["type: must be one of inject-context, say, end-call, transfer"]
    status, body, _ = await http("POST", f"/calls/{call_id}/control", json={"type": "say", "content": "hi"})
    assert status == 400
    assert body["details"] == ["end_after: required field is missing"]


async def test_invalid_json_and_missing_body_are_400(http: Http) -> None:
    status, body, _ = await http("POST", "/assistants", raw=b'{"name": ')
    assert status == 400
    assert body["error"] == "Invalid JSON"
    status, body, _ = await http("POST", "/assistants")
    assert status == 400
    assert body["details"] == ["body: a JSON request body is required"]


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("limit=0", "limit: must be >= 1"),
        ("limit=1001", "limit: must be <= 1000"),
        ("limit=ten", "limit: must be an integer"),
        ("offset=-1", "offset: must be >= 0"),
        ("start_date=yesterday", "start_date: must be an ISO 8601 date-time"),
    ],
)
async def test_paging_parameters_out_of_range_are_400(http: Http, query: str, detail: str) -> None:
    for path in ("/calls", "/usage"):
        status, body, _ = await http("GET", f"{path}?{query}")
        assert status == 400, (path, body)
        assert body["details"] == [detail]


async def test_unknown_ids_are_404(http: Http) -> None:
    for method, path in [
        ("GET", "/assistants/nope"),
        ("PATCH", "/assistants/nope"),
        ("DELETE", "/assistants/nope"),
        ("GET", "/tool-templates/nope"),
        ("GET", "/numbers/nope"),
        ("GET", "/calls/call-outbound-nope"),
        ("GET", "/sip-trunks/nope"),
        ("GET", "/analysis-templates/nope"),
        ("GET", "/campaigns/nope"),
        ("GET", "/campaigns/nope/leads"),
        ("DELETE", "/campaigns/nope/leads/x"),
        ("DELETE", "/domains"),
        ("POST", "/domains/verify"),
        ("POST", "/domains/refresh"),
    ]:
        status, body, _ = await http(method, path, json={} if method == "PATCH" else None)
        assert status == 404, (method, path, body)
        assert body["error"] == "Not found"
    status, body, _ = await http("DELETE", "/byok", json={"provider": "openai"})
    assert status == 404


# -- responses ----------------------------------------------------------------------------------


async def test_created_resources_have_uuid4_ids_and_millisecond_timestamps(http: Http) -> None:
    agent = await make_agent(http)
    assert UUID4.match(agent["id"])
    assert ISO_MS.match(agent["created_at"])
    assert ISO_MS.match(agent["updated_at"])
    # Server defaults fill the config blocks the client left out.
    assert agent["stt_config"]["provider"]
    assert agent["llm_config"]["model"]
    assert agent["tts_config"]["voice_id"]
    realtime = await make_agent(
        http, llm_config={"provider": "xai_realtime", "model": "grok", "voice": "ara"}
    )
    assert realtime["tts_config"] is None


async def test_same_seed_gives_the_same_ids() -> None:
    ids = []
    for _ in range(2):
        async with FakeFlireo(seed=5, rate_limit=None) as fake, aiohttp.ClientSession() as session:
            _, body, _ = await Http(fake, session)("POST", "/assistants", json={"name": "A"})
            ids.append(body["assistant"]["id"])
    assert ids[0] == ids[1]


async def test_delete_status_204_option() -> None:
    async with (
        FakeFlireo(delete_status=204, rate_limit=None, validate_responses=True) as fake,
        aiohttp.ClientSession() as session,
    ):
        http = Http(fake, session)
        agent = await make_agent(http)
        status, body, _ = await http("DELETE", f"/assistants/{agent['id']}")
        assert (status, body) == (204, None)
        assert fake.state.agents == {}


async def test_patch_null_clears_and_omitted_keys_stay(http: Http) -> None:
    agent = await make_agent(http, business_name="Acme", first_message="Hoi")
    status, body, _ = await http("PATCH", f"/assistants/{agent['id']}", json={"business_name": None})
    assert status == 200
    assert body["assistant"]["business_name"] is None
    assert body["assistant"]["first_message"] == "Hoi"


async def test_domain_get_is_null_when_none_and_flow_needs_resend_key(http: Http) -> None:
    status, body, _ = await http("GET", "/domains")
    assert (status, body) == (200, {"domain": None})
    status, body, _ = await http("POST", "/domains", json={"domain_name": "mail.acme.example"})
    assert status == 400
    assert "Resend" in body["error"]
    assert (await http("POST", "/byok", json={"provider": "resend", "api_key": "re_x"}))[0] == 200
    status, body, _ = await http("POST", "/domains", json={"domain_name": "mail.acme.example"})
    assert status == 201
    assert body["domain"]["status"] == "not_started"
    assert body["domain"]["records"]
    status, body, _ = await http("POST", "/domains", json={"domain_name": "other.example"})
    assert status == 409
    status, body, _ = await http("POST", "/domains/verify")
    assert body["domain"]["status"] == "pending"
    http.fake.clock.advance(60)  # the simulated DNS check needs 30 s
    status, body, _ = await http("POST", "/domains/refresh")
    assert body["domain"]["status"] == "verified"
    assert ISO_MS.match(body["domain"]["verified_at"])
    status, body, _ = await http("GET", "/domains/sync")
    assert body["selected_domain_id"] == http.fake.state.domain["resend_domain_id"]  # type: ignore[index]
    assert {d["name"] for d in body["domains"]} == {"mail.acme.example", "mail.fake-org.example"}


async def test_organization_counts_follow_state(http: Http) -> None:
    agent = await make_agent(http)
    await http("POST", "/numbers", json={"phone_number": "+31850835037", "agent_id": agent["id"]})
    status, body, _ = await http("GET", "/organizations")
    assert status == 200
    assert (body["active_agents"], body["active_numbers"], body["active_calls"]) == (1, 1, 0)
    assert "children" not in body
    status, body, _ = await http("GET", "/organizations?include_children=true")
    assert body["children"] == []


# -- rate limiting ------------------------------------------------------------------------------


async def test_rate_limit_headers_and_429() -> None:
    async with FakeFlireo(rate_limit=3, speed=1000) as fake, aiohttp.ClientSession() as session:
        http = Http(fake, session)
        before = time.time()
        remaining = []
        for _ in range(3):
            status, _, headers = await http("GET", "/voices")
            assert status == 200
            assert headers["X-RateLimit-Limit"] == "3"
            remaining.append(headers["X-RateLimit-Remaining"])
            # Wall-clock window, not scaled by speed=1000.
            assert before + 59 <= int(headers["X-RateLimit-Reset"]) <= time.time() + 61
        assert remaining == ["2", "1", "0"]
        status, body, headers = await http("GET", "/voices")
        assert status == 429
        assert body == {"error": "Rate limit exceeded", "retry_after": int(headers["Retry-After"])}
        assert 58 <= int(headers["Retry-After"]) <= 60
        assert headers["X-RateLimit-Remaining"] == "0"
        # Another key has its own window (and is then refused by auth).
        status, _, headers = await http("GET", "/voices", key="fl_test_other")
        assert status == 401
        assert headers["X-RateLimit-Remaining"] == "2"


async def test_rate_limit_none_sends_no_rate_headers(http: Http) -> None:
    status, _, headers = await http("GET", "/voices")
    assert status == 200
    assert "X-RateLimit-Limit" not in headers
    assert headers["X-Request-Id"]


# -- simulation ---------------------------------------------------------------------------------


async def wait_for_status(http: Http, call_id: str, wanted: str, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        _, call, _ = await http("GET", f"/calls/{call_id}")
        if call["status"] == wanted:
            return dict(call)
        assert time.monotonic() < deadline, call
        await asyncio.sleep(0.005)


async def test_outbound_call_lifecycle(http: Http) -> None:
    fake = http.fake
    agent = await make_agent(http, business_name="Acme")
    await http("POST", "/numbers", json={"phone_number": "+31850835037"})
    balance = fake.state.organization["minutes_balance"]
    status, body, _ = await http(
        "POST", "/calls/outbound", json={"destination": "+31612345678", "assistant_id": agent["id"]}
    )
    assert status == 200
    assert body["success"] is True
    assert body["status"] == "dialing"
    assert re.fullmatch(r"call-outbound-[A-Za-z0-9]{8}", body["call_id"])
    call_id = body["call_id"]
    _, call, _ = await http("GET", f"/calls/{call_id}")
    assert call["direction"] == "outbound"  # (status "connecting" is checked at speed 1 below)
    await fake.wait_calls_finished(timeout=5)
    _, call, _ = await http("GET", f"/calls/{call_id}")
    assert call["status"] == "ended"
    assert 30 <= call["duration_seconds"] <= 180
    assert call["assistant_phone"] == "+31850835037"
    assert call["agent_name"] == agent["name"]
    assert call["summary"]
    assert call["messages"][0]["role"] == "assistant"
    assert ISO_MS.match(call["started_at"])
    assert ISO_MS.match(call["ended_at"])
    _, usage, _ = await http("GET", "/usage")
    (log,) = usage["logs"]
    assert log["duration_sec"] == call["duration_seconds"]
    assert log["agent_name"] == agent["name"]
    assert usage["summary"]["total_calls"] == 1
    assert fake.state.organization["minutes_balance"] == pytest.approx(
        balance - call["duration_seconds"] / 60, abs=1e-3
    )
    assert fake.dialed() == ["+31612345678"]


async def test_outbound_request_rules(http: Http) -> None:
    fake = http.fake
    agent = await make_agent(http, is_active=False)
    active = await make_agent(http)
    dest = "+31612345678"
    cases = [
        ({"destination": dest, "assistant_id": "missing"}, 404),
        ({"destination": dest, "assistant_id": agent["id"]}, 400),  # inactive agent
        (
            {
                "destination": dest,
                "assistant_id": agent["id"],
                "assistant": {"llm_config": {"provider": "openai", "model": "m"}},
            },
            400,
        ),
        (
            {"destination": dest, "assistant": {"llm_config": {"provider": "openai", "model": "m"}}},
            400,
        ),  # no stt/tts
        ({"destination": dest, "assistant_id": active["id"], "number_id": "missing"}, 404),
    ]
    for payload, expected in cases:
        status, body, _ = await http("POST", "/calls/outbound", json=payload)
        assert status == expected, (payload, body)
    # A realtime transient assistant needs no STT/TTS blocks.
    status, _, _ = await http(
        "POST",
        "/calls/outbound",
        json={
            "destination": dest,
            "assistant": {"llm_config": {"provider": "xai_realtime", "model": "grok", "voice": "ara"}},
        },
    )
    assert status == 200
    fake.state.organization["minutes_balance"] = 0
    status, body, _ = await http(
        "POST",
        "/calls/outbound",
        json={"destination": dest, "assistant": {"llm_config": {"provider": "openai_live", "model": "m"}}},
    )
    assert status == 402
    assert body == {
        "error": "Insufficient credits",
        "message": "Your account has no credits remaining.",
        "balance": 0,
    }
    assert fake.dialed() == [dest]


async def test_failed_calls_make_no_usage() -> None:
    async with (
        FakeFlireo(speed=1000, rate_limit=None, failure_share=1.0, validate_responses=True) as fake,
        aiohttp.ClientSession() as session,
    ):
        http = Http(fake, session)
        agent = await make_agent(http)
        _, body, _ = await http(
            "POST", "/calls/outbound", json={"destination": "+31612345678", "assistant_id": agent["id"]}
        )
        await fake.wait_calls_finished(timeout=5)
        _, call, _ = await http("GET", f"/calls/{body['call_id']}")
        assert call["status"] == "failed"
        assert call["error"]
        assert call["end_reason"]
        assert fake.state.usage_logs == []


async def test_call_control_needs_in_progress_and_is_rate_limited_per_call() -> None:
    # speed 10: ringing takes 0.2-0.8 s and the conversation at least 3 s.
    async with (
        FakeFlireo(speed=10, rate_limit=None, control_rate_limit=3, seed=2) as fake,
        aiohttp.ClientSession() as session,
    ):
        http = Http(fake, session)
        agent = await make_agent(http)
        _, body, _ = await http(
            "POST", "/calls/outbound", json={"destination": "+31612345678", "assistant_id": agent["id"]}
        )
        call_id = body["call_id"]
        status, body, _ = await http("POST", f"/calls/{call_id}/control", json={"type": "end-call"})
        assert status == 400
        assert body["error"] == "Call is not active"
        await wait_for_status(http, call_id, "in-progress")
        ok = {"success": True, "message": "Command sent successfully"}
        assert (
            await http(
                "POST",
                f"/calls/{call_id}/control",
                json={"type": "inject-context", "content": "code 4821", "trigger_response": False},
            )
        )[:2] == (200, ok)
        assert (
            await http("POST", f"/calls/{call_id}/control", json={"type": "end-call", "message": "Dag!"})
        )[:2] == (200, ok)
        status, body, headers = await http("POST", f"/calls/{call_id}/control", json={"type": "end-call"})
        assert status == 429
        assert body["error"] == "Rate limit exceeded"
        assert int(headers["Retry-After"]) >= 1
        await fake.wait_calls_finished(timeout=5)
        _, call, _ = await http("GET", f"/calls/{call_id}")
        assert call["status"] == "ended"
        assert call["end_reason"] == "api_end_call"
        assert {"role": "system", "content": "code 4821"} in call["messages"]
        assert call["messages"][-1] == {"role": "assistant", "content": "Dag!"}


async def test_campaign_dials_pending_leads_and_counts() -> None:
    async with (
        FakeFlireo(speed=1000, rate_limit=None, seed=4, validate_responses=True) as fake,
        aiohttp.ClientSession() as session,
    ):
        http = Http(fake, session)
        agent = await make_agent(http)
        phones = [f"+3161000000{i}" for i in range(5)]
        _, body, _ = await http(
            "POST",
            "/campaigns",
            json={
                "name": "Q1",
                "agent_id": agent["id"],
                **CAMPAIGN,
                "system_message_template": "Je belt {{name}}.",
                "leads": [
                    {"phone_number": p, "variables": {"name": f"Lead {i}"}} for i, p in enumerate(phones)
                ],
            },
        )
        campaign = body["campaign"]
        assert (campaign["status"], campaign["total_leads"]) == ("draft", 5)
        status, body, _ = await http("PATCH", f"/campaigns/{campaign['id']}", json={"status": "scheduled"})
        assert status == 200
        assert body["campaign"]["status"] == "scheduled"
        await fake.wait_calls_finished(timeout=10)
        _, body, _ = await http("GET", f"/campaigns/{campaign['id']}")
        campaign = body["campaign"]
        assert (campaign["status"], campaign["completed_leads"], campaign["failed_leads"]) == (
            "completed",
            5,
            0,
        )
        _, body, _ = await http("GET", f"/campaigns/{campaign['id']}/leads")
        leads = body["leads"]
        assert [lead["phone_number"] for lead in leads] == phones  # oldest first
        assert all(lead["status"] == "completed" and lead["attempts"] == 1 for lead in leads)
        assert sorted(fake.dialed()) == phones
        first_call = fake.state.calls[leads[0]["call_id"]]
        assert first_call["messages"][0] == {"role": "system", "content": "Je belt Lead 0."}
        status, body, _ = await http("PATCH", f"/campaigns/{campaign['id']}", json={"status": "scheduled"})
        assert status == 400  # completed is final


async def test_paused_campaign_stops_dialing_and_resumes() -> None:
    async with (
        FakeFlireo(speed=1000, rate_limit=None, campaign_concurrency=1) as fake,
        aiohttp.ClientSession() as session,
    ):
        http = Http(fake, session)
        agent = await make_agent(http)
        leads = [{"phone_number": f"+3162000000{i}"} for i in range(5)]
        _, body, _ = await http(
            "POST", "/campaigns", json={"name": "c", "agent_id": agent["id"], **CAMPAIGN, "leads": leads}
        )
        cid = body["campaign"]["id"]
        await http("PATCH", f"/campaigns/{cid}", json={"status": "scheduled"})
        status, body, _ = await http("PATCH", f"/campaigns/{cid}", json={"status": "paused"})
        assert status == 200
        dialed_before_pause = len(fake.dialed())
        await fake.wait_calls_finished(timeout=5)
        # Calls under way finish, but nothing new is dialled (one call takes >= 32 ms here,
        # so at most a couple of leads can have been reached before the pause).
        assert len(fake.dialed()) == dialed_before_pause < 5
        assert fake.state.campaigns[cid]["status"] == "paused"
        await http("PATCH", f"/campaigns/{cid}", json={"status": "scheduled"})
        await fake.wait_calls_finished(timeout=5)
        assert sorted(fake.dialed()) == [lead["phone_number"] for lead in leads]
        assert fake.state.campaigns[cid]["status"] == "completed"


async def test_lead_being_called_cannot_be_removed() -> None:
    async with FakeFlireo(speed=20, rate_limit=None) as fake, aiohttp.ClientSession() as session:
        http = Http(fake, session)
        agent = await make_agent(http)
        _, body, _ = await http(
            "POST",
            "/campaigns",
            json={
                "name": "c",
                "agent_id": agent["id"],
                **CAMPAIGN,
                "leads": [{"phone_number": "+31630000000"}],
            },
        )
        cid = body["campaign"]["id"]
        lead_id = next(iter(fake.state.leads))
        await http("PATCH", f"/campaigns/{cid}", json={"status": "scheduled"})
        for _ in range(200):
            if fake.state.leads[lead_id]["status"] == "calling":
                break
            await asyncio.sleep(0.005)
        status, body, _ = await http("DELETE", f"/campaigns/{cid}/leads/{lead_id}")
        assert status == 409
        assert body["error"] == "Conflict"
        status, _, _ = await http("DELETE", f"/campaigns/{cid}")  # deleting the campaign stops it
        assert status == 200
        assert fake.state.leads == {}


async def test_leads_without_pagination_option() -> None:
    async with (
        FakeFlireo(leads_pagination=False, rate_limit=None, validate_responses=True) as fake,
        aiohttp.ClientSession() as session,
    ):
        http = Http(fake, session)
        agent = await make_agent(http)
        _, body, _ = await http(
            "POST",
            "/campaigns",
            json={
                "name": "c",
                "agent_id": agent["id"],
                **CAMPAIGN,
                "leads": [{"phone_number": f"+316400000{i:02d}"} for i in range(12)],
            },
        )
        status, body, _ = await http("GET", f"/campaigns/{body['campaign']['id']}/leads?limit=5")
        assert status == 200
        assert "pagination" not in body
        assert len(body["leads"]) == 12


async def test_wait_calls_finished_times_out_without_stopping_calls() -> None:
    async with FakeFlireo(speed=1, rate_limit=None) as fake, aiohttp.ClientSession() as session:
        http = Http(fake, session)
        agent = await make_agent(http)
        _, body, _ = await http(
            "POST", "/calls/outbound", json={"destination": "+31612345678", "assistant_id": agent["id"]}
        )
        with pytest.raises(TimeoutError):
            await fake.wait_calls_finished(timeout=0.05)
        assert fake.simulator.busy  # the call is still being simulated
        assert fake.state.calls[body["call_id"]]["status"] == "connecting"


async def record_sleeps(waits: list[float], seconds: float) -> None:
    waits.append(seconds)


async def test_page_delay_slows_paginated_lists_only() -> None:
    waits: list[float] = []
    fake = FakeFlireo(page_delay=0.2, rate_limit=None, sleep=lambda s: record_sleeps(waits, s))
    async with fake, aiohttp.ClientSession() as session:
        http = Http(fake, session)
        assert (await http("GET", "/assistants"))[0] == 200
        assert waits == []
        assert (await http("GET", "/usage"))[0] == 200
        assert waits == [0.2]


def test_seeded_rows_end_now_and_are_ordered() -> None:
    fake = FakeFlireo(speed=1)
    logs = fake.seed_usage_logs(3)
    calls = fake.seed_calls(2, direction="inbound")
    stamps = [log["created_at"] for log in logs]
    assert stamps == sorted(stamps)
    assert all(ISO_MS.match(s) for s in stamps)
    assert all(c["id"].startswith("call-_+316") for c in calls)
    assert len(fake.state.usage_logs) == 3


# -- faults -------------------------------------------------------------------------------------


async def test_injected_5xx_refuses_before_processing_and_is_reproducible() -> None:
    outcomes = []
    for _ in range(2):
        async with FakeFlireo(rate_limit=None, seed=9) as fake, aiohttp.ClientSession() as session:
            http = Http(fake, session)
            fake.inject("createAgent", status_5xx=1.0)
            seen = []
            for _ in range(8):
                status, _, headers = await http("POST", "/assistants", json={"name": "A"})
                seen.append((status, headers["Content-Type"].split(";")[0]))
            assert fake.state.agents == {}  # refused before the handler ran
            assert {s for s, _ in seen} <= {500, 502, 503}
            assert all(r.fault == "status_5xx" for r in fake.requests)
            assert (await http("GET", "/assistants"))[0] == 200  # other routes unaffected
            outcomes.append(seen)
    assert outcomes[0] == outcomes[1]
    # Seed 9 happens to draw all three statuses and one proxy-style HTML page.
    assert {s for s, _ in outcomes[0]} == {500, 502, 503}
    assert {ct for _, ct in outcomes[0]} == {"application/json", "text/html"}


async def test_injected_429_has_retry_after_and_times_caps_faults(http: Http) -> None:
    http.fake.inject(status_429=1.0, retry_after=2, times=1)
    status, body, headers = await http("GET", "/voices")
    assert (status, body, headers["Retry-After"]) == (
        429,
        {"error": "Rate limit exceeded", "retry_after": 2},
        "2",
    )
    assert (await http("GET", "/voices"))[0] == 200


async def test_route_rule_overrides_global_rule(http: Http) -> None:
    http.fake.inject(status_5xx=1.0)
    http.fake.inject("listVoices")  # an all-zero rule: voices work, everything else fails
    assert (await http("GET", "/voices"))[0] == 200
    assert (await http("GET", "/assistants"))[0] >= 500
    http.fake.clear_faults()
    assert (await http("GET", "/assistants"))[0] == 200


async def test_malformed_json_is_sent_after_processing(http: Http) -> None:
    http.fake.inject("createAgent", malformed_json=1.0)
    status, body, _ = await http("POST", "/assistants", json={"name": "A"})
    assert status == 201
    assert isinstance(body, str)
    with pytest.raises(json.JSONDecodeError, match=r"Unterminated|Expecting"):
        json.loads(body)
    assert len(http.fake.state.agents) == 1  # committed
    assert http.fake.requests[-1].fault == "malformed_json"


async def test_dropped_connection_after_processing(http: Http) -> None:
    agent = await make_agent(http)
    http.fake.inject("createOutboundCall", drop_after_processing=1.0)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await http(
            "POST", "/calls/outbound", json={"destination": "+31612345678", "assistant_id": agent["id"]}
        )
    assert http.fake.dialed() == ["+31612345678"]
    record = http.fake.requests_for("createOutboundCall")[-1]
    assert (record.status, record.fault) == (200, "drop_after_processing")
    await http.fake.wait_calls_finished(timeout=5)


async def test_latency_is_added(http: Http, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(http.fake, "sleep", lambda s: record_sleeps(waits, s))
    http.fake.inject("listVoices", latency=0.15)
    assert (await http("GET", "/voices"))[0] == 200
    assert waits == [0.15]
    assert http.fake.requests_for("listVoices")[-1].fault == "latency"


def test_fault_probabilities_are_checked() -> None:
    fake = FakeFlireo()
    with pytest.raises(ValueError, match="status_5xx"):
        fake.inject(status_5xx=1.5)
    with pytest.raises(ValueError, match="unknown operationId"):
        fake.inject("noSuchOperation", status_429=0.5)


# -- recording ----------------------------------------------------------------------------------


async def test_requests_are_recorded(http: Http) -> None:
    http.fake.seed_calls(1, direction="inbound")
    call_id = next(iter(http.fake.state.calls))
    assert "+" in call_id
    await http("GET", "/calls/" + call_id.replace("+", "%2B"))
    await http("GET", "/usage?limit=5&offset=0")
    await http("POST", "/assistants", json={"name": "Rec"})
    get_call, usage, create = http.fake.requests
    assert (get_call.method, get_call.path, get_call.operation_id, get_call.status) == (
        "GET",
        f"/calls/{call_id}",
        "getCall",
        200,
    )
    assert usage.query == {"limit": "5", "offset": "0"}
    assert (create.body, create.status) == ({"name": "Rec"}, 201)
    assert get_call.at <= usage.at <= create.at


# -- fixtures, process, thread ------------------------------------------------------------------


@pytest.mark.parametrize("flireo_fake_options", [{"delete_status": 204, "api_key": "fl_test_opts"}])
async def test_fixture_options_can_be_overridden(flireo_fake: FakeFlireo) -> None:
    assert flireo_fake.api_key == "fl_test_opts"
    assert flireo_fake.handlers.options.delete_status == 204
    # The fixture's own defaults: fast simulation, no server-side rate limit.
    assert flireo_fake.rate_limiter is None
    assert flireo_fake.clock.speed == 100


def test_fixture_options_from_marker(request: pytest.FixtureRequest) -> None:
    # The marker is built here, after the plugin registered it (a decorator would be
    # evaluated at import time, before pytest_plugins is processed).
    request.node.add_marker(pytest.mark.flireo_fake(seed=3, control_rate_limit=None))
    fake = request.getfixturevalue("flireo_fake")
    assert fake.seed == 3
    assert fake.simulator.control_limiter is None


async def test_serve_prints_url_and_key_and_stops() -> None:
    out = io.StringIO()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(0, None, 50.0, out=out, stop=stop, api_key="fl_test_cli"))
    for _ in range(200):
        if "FLIREO_API_KEY" in out.getvalue():
            break
        await asyncio.sleep(0.01)
    text = out.getvalue()
    url = re.search(r"FLIREO_BASE_URL=(\S+)", text).group(1)  # type: ignore[union-attr]
    assert "FLIREO_API_KEY=fl_test_cli" in text
    assert "unlimited" in text
    async with (
        aiohttp.ClientSession() as session,
        session.get(url + "/voices", headers={"Authorization": "Bearer fl_test_cli"}) as resp,
    ):
        assert resp.status == 200
    stop.set()
    await asyncio.wait_for(task, 5)


def test_cli_arguments() -> None:
    args = build_parser().parse_args(["--port", "9000", "--rate-limit", "none", "--speed", "10"])
    assert (args.port, args.rate_limit, args.speed, args.host) == (9000, None, 10.0, "127.0.0.1")
    assert build_parser().parse_args([]).rate_limit == 100


def test_runs_as_a_process_until_ctrl_c() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flireo_async.testing",
            "--port",
            str(port),
            "--rate-limit",
            "50",
            "--speed",
            "10",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/api/v1" in first
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/organizations", headers={"Authorization": "Bearer fl_test_fake"}
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert resp.status == 200
            assert resp.headers["X-RateLimit-Limit"] == "50"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_in_thread_serves_synchronous_clients() -> None:
    background = run_in_thread(speed=1000, rate_limit=None)
    with background as fake:
        request = urllib.request.Request(
            fake.url + "/assistants",
            data=b'{"name": "Sync"}',
            method="POST",
            headers={"Authorization": f"Bearer {fake.api_key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert resp.status == 201
        assert [a["name"] for a in fake.state.agents.values()] == ["Sync"]
        background.call(fake.wait_calls_finished(timeout=1))
