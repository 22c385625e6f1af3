"""Envelope, alias and error-shape tolerance: every documented form of a response decodes (aioresponses)."""

from __future__ import annotations

import pytest
from aioresponses import aioresponses

from flireo_async import (
    APIResponseValidationError,
    AsyncFlireo,
    AuthenticationError,
    BadRequestError,
    InsufficientCreditsError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
)
from flireo_async.models import EndCallToolTemplate

from .conftest import AGENT, BASE

TEMPLATE = {
    "id": "t1",
    "name": "Bye",
    "tool_type": "end_call",
    "tool_config": {},
    "created_at": "2026-01-07T10:00:00.000Z",
}
ANALYSIS = {
    "id": "an1",
    "org_id": "o",
    "name": "Lead",
    "system_prompt": "s",
    "user_prompt": "u",
    "schema": {"type": "object"},
    "created_at": "2026-01-07T10:00:00Z",
    "updated_at": "2026-01-07T10:00:00Z",
}
LEAD = {
    "id": "l1",
    "campaign_id": "c1",
    "phone_number": "+31612345678",
    "status": "pending",
    "attempts": 0,
    "created_at": "2026-01-07T10:05:00.000Z",
}


async def test_alias_envelope_keys(mocked: aioresponses, client: AsyncFlireo) -> None:
    mocked.get(f"{BASE}/assistants/a1", payload={"agent": AGENT})
    mocked.get(f"{BASE}/assistants", payload={"agents": [AGENT]})
    mocked.get(f"{BASE}/tool-templates/t1", payload={"toolTemplate": {**TEMPLATE, "tool_type": "endCall"}})
    mocked.get(f"{BASE}/tool-templates", payload={"toolTemplates": [TEMPLATE]})
    assert (await client.agents.get("a1")).name == "Support"
    assert [a.id for a in await client.agents.list()] == ["a1"]
    template = await client.tool_templates.get("t1")
    assert isinstance(template, EndCallToolTemplate)
    assert len(await client.tool_templates.list()) == 1


async def test_analysis_template_alias_shapes(mocked: aioresponses, client: AsyncFlireo) -> None:
    mocked.get(f"{BASE}/analysis-templates/an1", payload=ANALYSIS)  # bare object
    mocked.get(
        f"{BASE}/analysis-templates", payload={"data": [ANALYSIS], "total": 1, "limit": 100, "offset": 0}
    )
    assert (await client.analysis_templates.get("an1")).name == "Lead"
    assert [t.id for t in await client.analysis_templates.list()] == ["an1"]


async def test_resend_domains_as_a_bare_array(mocked: aioresponses, client: AsyncFlireo) -> None:
    mocked.get(
        f"{BASE}/domains/sync", payload=[{"id": "r1", "name": "mail.acme.example", "status": "verified"}]
    )
    result = await client.domains.list_resend_domains()
    assert [d.id for d in result.domains] == ["r1"]


async def test_domain_none_as_null_or_404(mocked: aioresponses, client: AsyncFlireo) -> None:
    mocked.get(f"{BASE}/domains", payload={"domain": None})
    mocked.get(f"{BASE}/domains", status=404, payload={"error": "Not found"})
    assert await client.domains.get() is None
    assert await client.domains.get() is None


@pytest.mark.parametrize("shape", ["204", "success", "success-with-extras"])
async def test_delete_accepts_204_or_success_body(
    shape: str, mocked: aioresponses, client: AsyncFlireo
) -> None:
    url = f"{BASE}/numbers/n1"
    if shape == "204":
        mocked.delete(url, status=204)
    elif shape == "success":
        mocked.delete(url, payload={"success": True})
    else:
        mocked.delete(url, payload={"success": True, "deleted_id": "n1"})
    await client.numbers.delete("n1")  # returns None: the confirmation body is not decoded


async def test_byok_delete_returns_keys_or_none(mocked: aioresponses, client: AsyncFlireo) -> None:
    mocked.delete(f"{BASE}/byok", payload={"success": True, "byok_keys": {"openai_secret_id": None}})
    mocked.delete(f"{BASE}/byok", status=204)
    keys = await client.byok.delete(provider="openai")
    assert keys is not None
    assert keys.openai_secret_id is None
    assert await client.byok.delete(provider="openai") is None


async def test_leads_without_pagination_are_complete(mocked: aioresponses, client: AsyncFlireo) -> None:
    mocked.get(f"{BASE}/campaigns/c1/leads", payload={"leads": [LEAD, {**LEAD, "id": "l2"}]})
    leads = [lead.id async for lead in client.campaigns.list_leads("c1")]
    assert leads == ["l1", "l2"]
    assert len(mocked.requests) == 1


async def test_flat_error_shape(mocked: aioresponses, client: AsyncFlireo) -> None:
    mocked.post(
        f"{BASE}/calls/outbound",
        status=402,
        payload={
            "error": "Insufficient credits",
            "message": "Your account has no credits remaining.",
            "balance": 0,
        },
        headers={"X-Request-Id": "req-9"},
    )
    with pytest.raises(InsufficientCreditsError) as info:
        await client.calls.create(destination="+31612345678", assistant_id="a1")
    err = info.value
    assert err.status == 402
    assert err.error == "Insufficient credits"
    assert err.message == "Insufficient credits: Your account has no credits remaining."
    assert err.body["balance"] == 0
    assert err.request_id == "req-9"
    assert err.code is None


async def test_flat_validation_details(mocked: aioresponses, client: AsyncFlireo) -> None:
    mocked.post(
        f"{BASE}/calls/outbound",
        status=400,
        payload={"error": "Validation failed", "details": ["destination must be in E.164 format"]},
    )
    with pytest.raises(BadRequestError) as info:
        await client.calls.create(destination="+31612345678", assistant_id="a1")
    assert info.value.details == ["destination must be in E.164 format"]
    assert "E.164" in str(info.value)


async def test_nested_error_shape(mocked: aioresponses, client: AsyncFlireo) -> None:
    mocked.post(
        f"{BASE}/assistants",
        status=400,
        payload={"error": {"code": "missing_field", "message": "Field 'name' is required", "param": "name"}},
    )
    mocked.get(
        f"{BASE}/organizations",
        status=401,
        payload={"error": {"code": "api_key_revoked", "message": "Key revoked", "type": "auth"}},
    )
    with pytest.raises(BadRequestError) as info:
        await client.agents.create(name="x")
    assert (info.value.code, info.value.param, info.value.message) == (
        "missing_field",
        "name",
        "Field 'name' is required",
    )
    with pytest.raises(AuthenticationError) as auth:
        await client.organization.get()
    assert auth.value.code == "api_key_revoked"


async def test_nested_rate_limit_error(mocked: aioresponses) -> None:
    mocked.get(
        f"{BASE}/voices",
        status=429,
        headers={"Retry-After": "45"},
        payload={"error": {"code": "rate_limit_exceeded", "message": "Too many requests."}},
    )
    async with AsyncFlireo(api_key="k", base_url=BASE, rate_limit=None, max_retries=0) as c:
        with pytest.raises(RateLimitError) as info:
            await c.voices.list()
    assert info.value.code == "rate_limit_exceeded"
    assert info.value.retry_after == 45


async def test_non_json_error_body(mocked: aioresponses) -> None:
    mocked.get(
        f"{BASE}/voices", status=502, body="<html><body>Bad gateway</body></html>", content_type="text/html"
    )
    async with AsyncFlireo(api_key="k", base_url=BASE, rate_limit=None, max_retries=0) as c:
        with pytest.raises(InternalServerError) as info:
            await c.voices.list()
    assert info.value.status == 502
    assert "Bad gateway" in info.value.message
    assert isinstance(info.value.body, str)


async def test_empty_error_body_uses_reason(mocked: aioresponses, client: AsyncFlireo) -> None:
    mocked.get(f"{BASE}/numbers/n1", status=404, body="")
    with pytest.raises(NotFoundError) as info:
        await client.numbers.get("n1")
    assert info.value.message == "Not Found"


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"assistants": "nope"}',
        b'{"something_else": []}',
        b'{"assistants": [{"id": 5}]}',
    ],
)
async def test_success_body_not_matching_spec(body: bytes, mocked: aioresponses, client: AsyncFlireo) -> None:
    mocked.get(f"{BASE}/assistants", body=body, content_type="application/json")
    with pytest.raises(APIResponseValidationError) as info:
        await client.agents.list()
    assert info.value.body == body.decode()
    assert info.value.status == 200


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, "BadRequestError"),
        (401, "AuthenticationError"),
        (402, "InsufficientCreditsError"),
        (403, "PermissionDeniedError"),
        (404, "NotFoundError"),
        (409, "ConflictError"),
        (422, "UnprocessableEntityError"),
        (418, "APIStatusError"),
        (429, "RateLimitError"),
        (500, "InternalServerError"),
        (503, "InternalServerError"),
    ],
)
async def test_every_status_maps_to_its_error_class(status: int, cls: str, mocked: aioresponses) -> None:
    import flireo_async

    mocked.get(
        f"{BASE}/voices",
        status=status,
        payload={"error": "Something", "message": "went wrong"},
        headers={"X-Request-Id": "req-7", "Retry-After": "0"},
    )
    async with AsyncFlireo(api_key="k", base_url=BASE, rate_limit=None, max_retries=0) as c:
        with pytest.raises(flireo_async.APIStatusError) as info:
            await c.voices.list()
    assert type(info.value) is getattr(flireo_async, cls)
    assert info.value.status == status
    assert info.value.message == "Something: went wrong"
    assert info.value.request_id == "req-7"
    assert info.value.headers["X-Request-Id"] == "req-7"
    assert info.value.body == {"error": "Something", "message": "went wrong"}


async def test_older_flat_tool_template_shape_decodes(mocked: aioresponses, client: AsyncFlireo) -> None:
    from flireo_async.models import FunctionTemplateConfig, FunctionToolTemplate

    old = {
        "id": "t9",
        "name": "lookup",
        "description": "d",
        "type": "function",
        "url": "https://x.example/hook",
        "async": False,
        "asyncResponse": "One moment",
        "parameters": {"type": "object"},
        "created_at": "2026-01-07T10:00:00.000Z",
    }
    mocked.get(f"{BASE}/tool-templates/t9", payload={"tool_template": old})
    template = await client.tool_templates.get("t9")
    assert isinstance(template, FunctionToolTemplate)
    assert template.tool_type == "function"
    assert template.description == "d"
    assert isinstance(template.tool_config, FunctionTemplateConfig)
    assert template.tool_config.url == "https://x.example/hook"
    assert template.tool_config.async_ is False
    assert template.tool_config.parameters == {"type": "object"}
    assert template.tool_config.extra == {"asyncResponse": "One moment"}
    assert template.extra == {}
