"""A hostile (or merely real) server: one test per robustness rule of the session layer.

Servers here are loopback aiohttp apps or raw sockets. The first part decodes the response
bodies the API reference documents, copied below as literals, with the default lenient decoder.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import math
import time
import typing
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import aiohttp
import attrs
import pytest
from aiohttp import web

from flireo_async import (
    UNSET,
    APIConnectionError,
    APIResponseValidationError,
    AsyncFlireo,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    EventLoopMismatchError,
    FlireoError,
    InsufficientCreditsError,
    InternalServerError,
    RateLimitError,
    RequestValidationError,
    ResponseTooLargeError,
    UnsetType,
    _convert,
    _retry,
)
from flireo_async._config import ClientConfig
from flireo_async._model import Model
from flireo_async._operation import Operation
from flireo_async._pagination import DeferredItems
from flireo_async._ratelimit import LocalPacer
from flireo_async._transport import Transport
from flireo_async.models import (
    Domain,
    EndCallToolTemplate,
    FunctionToolTemplate,
    Pagination,
    SayCommand,
    TransferCallToolTemplate,
    UsageSummary,
)
from flireo_async.webhooks import (
    VerificationFailure,
    WebhookRouter,
    WebhookUsageError,
    WebhookVerificationError,
    sign,
    verify,
)
from tests.typed import present

KEY = "fl_live_hostile_secret_key_0123456789"
SECRET = "whsec_hostile"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# -- the response bodies documented in the API reference ----------------------------------------

ERROR_UNAUTHORIZED: dict[str, Any] = {"error": "Unauthorized", "message": "Invalid or missing API key"}

ERROR_CREDITS: dict[str, Any] = {
    "error": "Insufficient credits",
    "message": "Your account has no credits remaining.",
    "balance": 0,
}

ERROR_RATE_FLAT: dict[str, Any] = {"error": "Rate limit exceeded", "retry_after": 45}

ERROR_VALIDATION: dict[str, Any] = {
    "error": "Validation failed",
    "details": ["destination must be in E.164 format"],
}

ERROR_RATE_NESTED: dict[str, Any] = {
    "error": {"code": "rate_limit_exceeded", "message": "Too many requests. Please retry after 45 seconds."}
}

ERROR_MISSING_FIELD: dict[str, Any] = {
    "error": {"code": "missing_field", "message": "Field 'name' is required", "param": "name"}
}

AGENT: dict[str, Any] = {
    "assistant": {
        "id": "3f6d2a9e-8c41-4b7a-9e2d-5a1c7f0b6e13",
        "name": "Customer Support Agent",
        "business_name": "Acme Corp",
        "notification_email": "support@acme.example",
        "first_message": "Hallo, welkom bij Acme. Waarmee kan ik u helpen?",
        "is_active": True,
        "max_duration_seconds": 600,
        "autonomous_silence_handling": True,
        "voicemail_detection": False,
        "voicemail_message": None,
        "webhook_url": "https://hooks.acme.example/flireo",
        "webhook_secret": "whsec_4f9c2e7a1b",
        "webhook_events": ["tool-calls", "status-update", "end-of-call-report"],
        "analysis_plan": {
            "structured_data_plan": {
                "enabled": True,
                "schema": {
                    "type": "object",
                    "properties": {"sentiment": {"type": "integer", "minimum": 1, "maximum": 10}},
                },
            },
            "min_messages_threshold": 2,
        },
        "stt_config": {
            "provider": "deepgram",
            "model": "nova-3-general",
            "language": "nl",
            "keyterms": ["ja", "nee"],
        },
        "llm_config": {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "temperature": 0.7,
            "messages": [
                {"role": "system", "content": "Je bent een vriendelijke klantenservicemedewerker van Acme."}
            ],
            "tools": [
                {
                    "name": "lookup_customer",
                    "description": "Find a customer by phone number",
                    "parameters": {
                        "type": "object",
                        "properties": {"phone": {"type": "string"}},
                        "required": ["phone"],
                    },
                },
                {"type": "end_call"},
                {
                    "type": "transfer_call",
                    "destinations": [
                        {
                            "type": "number",
                            "number": "+31201234567",
                            "description": "Sales, for quotes",
                            "message": "Ik verbind u door met Sales.",
                        }
                    ],
                },
            ],
        },
        "tts_config": {
            "provider": "elevenlabs",
            "voice_id": "21m00Tcm4TlvDq8ikWAM",
            "model": "eleven_flash_v2_5",
            "stability": 0.5,
            "similarity_boost": 0.75,
        },
        "speech_config": {"background_audio": {"enabled": True, "clip": "office", "volume": 0.3}},
        "created_at": "2026-01-07T10:00:00.000Z",
        "updated_at": "2026-01-07T10:00:00.000Z",
    }
}

TOOL_TEMPLATE_FUNCTION: dict[str, Any] = {
    "tool_template": {
        "id": "5d9c7b3a-1e2f-4a6b-9c8d-7e6f5a4b3c2d",
        "org_id": "9b2e4c1a-7d3f-4e8b-a6c5-2f1d0e9a8b74",
        "name": "Customer Lookup",
        "description": "Look up customer details by phone number",
        "tool_type": "function",
        "tool_config": {
            "name": "lookup_customer",
            "description": "Fetches the customer record from the CRM",
            "url": "https://api.acme.example/customers",
            "parameters": {
                "type": "object",
                "properties": {"phone": {"type": "string", "description": "Customer phone number"}},
                "required": ["phone"],
            },
        },
        "created_at": "2026-01-07T10:00:00.000Z",
        "updated_at": "2026-01-07T10:00:00.000Z",
    }
}

TOOL_TEMPLATE_TRANSFER: dict[str, Any] = {
    "tool_template": {
        "id": "8c7b6a59-4d3e-4f2a-9b1c-0d9e8f7a6b5c",
        "org_id": "9b2e4c1a-7d3f-4e8b-a6c5-2f1d0e9a8b74",
        "name": "Transfer to sales",
        "description": None,
        "tool_type": "transfer_call",
        "tool_config": {
            "destinations": [
                {"type": "number", "number": "+31201234567", "description": "Sales, for pricing questions"}
            ]
        },
        "created_at": "2026-01-07T10:00:00.000Z",
        "updated_at": "2026-01-07T10:00:00.000Z",
    }
}

NUMBER: dict[str, Any] = {
    "number": {
        "id": "c4a8e2f1-3b6d-4f9a-8e7c-1d2b3a4c5e6f",
        "phone_number": "+31850835037",
        "name": "Main Support Line",
        "agent_id": "3f6d2a9e-8c41-4b7a-9e2d-5a1c7f0b6e13",
        "agent_name": "Customer Support Agent",
        "business_name": "Acme Corp",
        "transfer_trunk_id": "7e1f3a5c-9b2d-4c6e-8a0f-2b4d6e8a0c1e",
        "transfer_trunk_name": "Office PBX",
        "workflow_id": None,
        "workflow_name": None,
        "source": None,
        "is_active": True,
        "created_at": "2026-01-07T10:00:00.000Z",
        "updated_at": "2026-01-07T10:00:00.000Z",
    }
}

CALL_LIST: dict[str, Any] = {
    "calls": [
        {
            "id": "call-_+31612345678_XqaQxRRgAzYc",
            "status": "ended",
            "direction": "inbound",
            "caller_phone": "+31612345678",
            "assistant_phone": "+31850835037",
            "phone_number": "+31850835037",
            "agent_id": "3f6d2a9e-8c41-4b7a-9e2d-5a1c7f0b6e13",
            "number_id": "c4a8e2f1-3b6d-4f9a-8e7c-1d2b3a4c5e6f",
            "agent_name": "Customer Support Agent",
            "business_name": "Acme Corp",
            "started_at": "2026-01-07T10:00:05.000Z",
            "ended_at": "2026-01-07T10:01:29.000Z",
            "duration_seconds": 84,
            "end_reason": "user_hangup",
            "error": None,
            "summary": "Caller asked for opening hours and booked an appointment for next week.",
            "analysis_result": {"sentiment": 8},
            "messages": [
                {"role": "assistant", "content": "Hallo, welkom bij Acme."},
                {"role": "user", "content": "Hoe laat zijn jullie open?"},
            ],
            "room_name": "inbound-9f3k2",
            "recording_url": None,
            "created_at": "2026-01-07T10:00:00.000Z",
            "updated_at": "2026-01-07T10:01:30.000Z",
        }
    ],
    "pagination": {"total": 150, "limit": 100, "offset": 0},
}

OUTBOUND: dict[str, Any] = {
    "success": True,
    "call_id": "call-outbound-7Hk2pQ9s",
    "room_name": "outbound-7Hk2pQ9s",
    "status": "dialing",
}

CONTROL: dict[str, Any] = {"success": True, "message": "Command sent successfully"}

USAGE: dict[str, Any] = {
    "logs": [
        {
            "id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "duration_sec": 180,
            "byok_stt": False,
            "byok_llm": False,
            "byok_tts": False,
            "call_type": "phone",
            "phone_number": "+31850835037",
            "agent_name": "Customer Support Agent",
            "business_name": "Acme Corp",
            "created_at": "2026-01-07T10:03:00.000Z",
        }
    ],
    "pagination": {"total": 42, "limit": 100, "offset": 0},
    "summary": {"total_calls": 42, "total_duration_seconds": 7560, "total_duration_minutes": 126},
}

TRUNK: dict[str, Any] = {
    "trunk": {
        "id": "7e1f3a5c-9b2d-4c6e-8a0f-2b4d6e8a0c1e",
        "org_id": "9b2e4c1a-7d3f-4e8b-a6c5-2f1d0e9a8b74",
        "name": "Office PBX",
        "provider": "freepbx",
        "address": "pbx.acme.example",
        "transport": "tls",
        "auth_username": "flireo-trunk",
        "is_active": True,
        "created_at": "2026-01-07T10:00:00.000Z",
        "updated_at": "2026-01-07T10:00:00.000Z",
    }
}

VOICES: dict[str, Any] = {
    "voices": [
        {
            "id": "nl_NL-pim-medium",
            "name": "Pim",
            "language": "nl",
            "description": {"en": "Pim (Dutch)", "nl": "Pim (Nederlands)"},
        }
    ]
}

BYOK_KEYS: dict[str, Any] = {
    "success": True,
    "byok_keys": {
        "deepgram_secret_id": "vault-secret-id-1",
        "openai_secret_id": "vault-secret-id-2",
        "elevenlabs_secret_id": None,
        "xai_secret_id": None,
        "resend_secret_id": None,
    },
}

BYOK_PROVIDERS: dict[str, Any] = {
    "providers": [
        {
            "id": "deepgram",
            "name": "Deepgram",
            "category": "stt",
            "docsUrl": "https://developers.deepgram.com/",
            "models": [{"id": "nova-3-general", "name": "Nova 3 General", "default": True}],
        },
        {
            "id": "openai",
            "name": "OpenAI",
            "category": "llm",
            "docsUrl": "https://platform.openai.com/docs",
            "models": [
                {"id": "gpt-4o-mini", "name": "GPT-4o Mini", "default": True},
                {"id": "gpt-4o", "name": "GPT-4o", "default": False},
            ],
        },
    ]
}

DOMAIN: dict[str, Any] = {
    "domain": {
        "id": "6c5b4a39-2817-4f6e-9d5c-4b3a29180f7e",
        "org_id": "9b2e4c1a-7d3f-4e8b-a6c5-2f1d0e9a8b74",
        "domain_name": "mail.acme.example",
        "resend_domain_id": "b7c8d9e0-f1a2-4b3c-9d4e-5f6a7b8c9d0e",
        "status": "pending",
        "region": "eu-west-1",
        "records": [
            {
                "record": "SPF",
                "name": "send",
                "type": "MX",
                "ttl": "Auto",
                "status": "pending",
                "value": "feedback-smtp.eu-west-1.amazonses.com",
                "priority": 10,
            },
            {
                "record": "DKIM",
                "name": "resend._domainkey",
                "type": "TXT",
                "ttl": "Auto",
                "status": "pending",
                "value": "p=MIGfMA0GCSqGSIb3DQEB...",
            },
        ],
        "created_at": "2026-01-07T10:00:00.000Z",
        "updated_at": "2026-01-07T10:00:00.000Z",
        "verified_at": None,
    }
}

RESEND_DOMAINS: dict[str, Any] = {
    "domains": [
        {
            "id": "b7c8d9e0-f1a2-4b3c-9d4e-5f6a7b8c9d0e",
            "name": "mail.acme.example",
            "status": "verified",
            "region": "eu-west-1",
        }
    ],
    "selected_domain_id": "b7c8d9e0-f1a2-4b3c-9d4e-5f6a7b8c9d0e",
}

ANALYSIS_TEMPLATE: dict[str, Any] = {
    "analysis_template": {
        "id": "a2b4c6d8-e0f1-4a3b-8c5d-6e7f8a9b0c1d",
        "org_id": "9b2e4c1a-7d3f-4e8b-a6c5-2f1d0e9a8b74",
        "name": "Lead Qualification",
        "description": "Budget, timeline and decision maker from sales calls",
        "system_prompt": "You analyse sales calls and return JSON only.",
        "user_prompt": "Extract the qualification data from this call.\n\nTranscript: {transcript}",
        "schema": {
            "type": "object",
            "properties": {
                "budget_mentioned": {"type": "boolean"},
                "timeline": {"type": "string"},
                "decision_maker": {"type": "boolean"},
            },
        },
        "created_at": "2026-01-07T10:00:00Z",
        "updated_at": "2026-01-07T10:00:00Z",
    }
}

ORGANIZATION: dict[str, Any] = {
    "id": "9b2e4c1a-7d3f-4e8b-a6c5-2f1d0e9a8b74",
    "name": "Acme Corp",
    "minutes_balance": 500.5,
    "monthly_usage_minutes": 120,
    "active_numbers": 3,
    "active_agents": 2,
    "active_calls": 1,
    "has_local_models_access": False,
    "parent_org_id": None,
    "children": [
        {
            "id": "2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f",
            "name": "Acme Benelux",
            "created_at": "2026-01-07T10:00:00Z",
        }
    ],
}

CAMPAIGN: dict[str, Any] = {
    "campaign": {
        "id": "e8d7c6b5-a4f3-4e2d-9c1b-0a9f8e7d6c5b",
        "name": "Q1 Sales Outreach",
        "agent_id": "3f6d2a9e-8c41-4b7a-9e2d-5a1c7f0b6e13",
        "status": "scheduled",
        "system_message_template": "You are calling {{name}} from {{company}} to schedule a demo.",
        "schedule_start_time": "09:00:00",
        "schedule_end_time": "17:00:00",
        "timezone": "Europe/Amsterdam",
        "total_leads": 150,
        "completed_leads": 45,
        "failed_leads": 3,
        "created_at": "2026-01-07T10:00:00.000Z",
        "updated_at": "2026-01-07T14:30:00.000Z",
    }
}

LEADS: dict[str, Any] = {
    "leads": [
        {
            "id": "1f2e3d4c-5b6a-4978-8a6b-5c4d3e2f1a0b",
            "campaign_id": "e8d7c6b5-a4f3-4e2d-9c1b-0a9f8e7d6c5b",
            "phone_number": "+31612345678",
            "variables": {"name": "Jan", "company": "Bakkerij de Vries"},
            "status": "completed",
            "call_id": "call-outbound-Qm4d8Lx2",
            "attempts": 1,
            "last_attempt_at": "2026-01-08T09:12:00.000Z",
            "created_at": "2026-01-07T10:05:00.000Z",
        }
    ],
    "pagination": {"total": 150, "limit": 100, "offset": 0},
}

# Older shapes the reference documents as aliases ("accept when parsing").
USAGE_OLDER: dict[str, Any] = {
    "logs": [
        {
            "id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "call_id": "call-outbound-7Hk2pQ9s",
            "minutes_used": 3,
            "cost": 0.45,
            "created_at": "2026-01-07T10:03:00.000Z",
        }
    ],
    "pagination": {"total": 1, "limit": 100, "offset": 0},
    "summary": {"total_calls": 1, "total_minutes": 3, "total_cost": 0.45},
}
DOMAIN_OLDER: dict[str, Any] = {
    "domain": {
        "id": "6c5b4a39-2817-4f6e-9d5c-4b3a29180f7e",
        "org_id": "9b2e4c1a-7d3f-4e8b-a6c5-2f1d0e9a8b74",
        "domain_name": "mail.acme.example",
        "verified": True,
        "region": "eu-west-1",
        "created_at": "2026-01-07T10:00:00.000Z",
        "updated_at": "2026-01-07T10:00:00.000Z",
    }
}
TOOL_TEMPLATE_FLAT: dict[str, Any] = {
    "tool_template": {
        "id": "5d9c7b3a-1e2f-4a6b-9c8d-7e6f5a4b3c2d",
        "name": "Transfer to sales",
        "description": "Hand the caller to sales",
        "type": "transferCall",
        "destinations": [{"type": "number", "number": "+31201234567", "description": "Sales"}],
        "created_at": "2026-01-07T10:00:00.000Z",
    }
}

AGENT_ID = AGENT["assistant"]["id"]
CALL_ID = CALL_LIST["calls"][0]["id"]
CAMPAIGN_ID = CAMPAIGN["campaign"]["id"]


# -- servers -----------------------------------------------------------------------------------

Route = Handler | tuple[int, Any]
Serve = Callable[[dict[str, Route]], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start a loopback aiohttp app: ``{"GET /calls": handler or (status, json body)}``;
    every request is recorded in ``serve.seen`` (method and raw path with query)."""
    runners: list[web.AppRunner] = []
    seen: list[str] = []

    async def start(routes: dict[str, Route]) -> str:
        app = web.Application()

        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            seen.append(f"{request.method} {request.raw_path}")
            return await handler(request)

        app.middlewares.append(record)
        for spec, route in routes.items():
            method, _, path = spec.partition(" ")
            if isinstance(route, tuple):
                status, body = route

                async def reply(_: web.Request, status: int = status, body: Any = body) -> web.Response:
                    return web.json_response(body, status=status)

                app.router.add_route(method, "/api/v1" + path, reply)
            else:
                app.router.add_route(method, "/api/v1" + path, route)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}/api/v1"

    start.seen = seen  # type: ignore[attr-defined]
    yield start
    for runner in runners:
        await runner.cleanup()


RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[RawHandler], Awaitable[str]]]:
    """Start a raw TCP server on loopback that runs ``handler`` per connection."""
    servers: list[asyncio.Server] = []

    async def start(handler: RawHandler) -> str:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/api/v1"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """The request head (through the blank line)."""
    return await reader.readuntil(b"\r\n\r\n")


class SleepGuard:
    """``asyncio.sleep`` that refuses to wait longer than ``limit`` seconds: a wait the SDK was
    not supposed to take fails the test at once instead of hanging it."""

    def __init__(self) -> None:
        self.limit = math.inf
        self.requested: list[float] = []


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> SleepGuard:
    guard = SleepGuard()
    real = asyncio.sleep

    async def guarded(delay: float, result: Any = None) -> Any:
        guard.requested.append(delay)
        if delay > guard.limit:
            raise AssertionError(f"the SDK asked to sleep {delay}s (allowed: {guard.limit}s)")
        return await real(delay, result)

    monkeypatch.setattr(asyncio, "sleep", guarded)
    return guard


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries happen at once (the backoff itself is tested elsewhere)."""
    monkeypatch.setattr(_retry, "backoff", lambda attempt: 0.0)


@pytest.fixture
def fresh_gap_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget which gaps were logged, so that "once" is counted from this test on."""
    monkeypatch.setattr(_convert, "_reported", set())


def client_for(base: str, **settings: Any) -> AsyncFlireo:
    return AsyncFlireo(api_key=KEY, base_url=base, rate_limit=None, **settings)


# == 1. Decode what the real server sends ========================================================

Check = Callable[[Any], object]


def _agent(agent: Any) -> None:
    assert agent.name == "Customer Support Agent"
    assert len(agent.llm_config.tools) == 3
    assert agent.tts_config.voice_id == "21m00Tcm4TlvDq8ikWAM"


def _function_template(template: Any) -> None:
    assert isinstance(template, FunctionToolTemplate)
    assert template.tool_config.name == "lookup_customer"


def _transfer_template(template: Any) -> None:
    assert isinstance(template, TransferCallToolTemplate)
    assert present(present(template.tool_config).destinations)[0].number == "+31201234567"


def _calls(page: Any) -> None:
    assert page.total == 150
    assert page.items[0].id == CALL_ID
    assert page.items[0].duration_seconds == 84


def _usage(page: Any) -> None:
    assert page.items[0].duration_sec == 180
    assert page.summary is not None
    assert page.summary.total_duration_minutes == 126


def _leads(page: Any) -> None:
    assert page.total == 150
    assert page.items[0].call_id == "call-outbound-Qm4d8Lx2"


DOCUMENTED: dict[str, tuple[str, dict[str, Any], Callable[[AsyncFlireo], Awaitable[Any]], Check]] = {
    "agent": (
        f"GET /assistants/{AGENT_ID}",
        AGENT,
        lambda c: c.agents.get(AGENT_ID),
        _agent,
    ),
    "function tool template": (
        "GET /tool-templates/t1",
        TOOL_TEMPLATE_FUNCTION,
        lambda c: c.tool_templates.get("t1"),
        _function_template,
    ),
    "transfer tool template": (
        "GET /tool-templates/t2",
        TOOL_TEMPLATE_TRANSFER,
        lambda c: c.tool_templates.get("t2"),
        _transfer_template,
    ),
    "number": (
        "GET /numbers/n1",
        NUMBER,
        lambda c: c.numbers.get("n1"),
        lambda n: (n.transfer_trunk_name == "Office PBX") or pytest.fail(repr(n)),
    ),
    "call list": ("GET /calls", CALL_LIST, lambda c: c.calls.list(), _calls),
    "outbound call": (
        "POST /calls/outbound",
        OUTBOUND,
        lambda c: c.calls.create(destination="+31612345678", assistant_id=AGENT_ID),
        lambda r: (r.call_id == "call-outbound-7Hk2pQ9s" and r.status == "dialing") or pytest.fail(repr(r)),
    ),
    "call control": (
        "POST /calls/{call_id}/control",
        CONTROL,
        lambda c: c.calls.control(CALL_ID, SayCommand(content="Een moment.", end_after=False)),
        lambda r: (r.success is True) or pytest.fail(repr(r)),
    ),
    "usage": ("GET /usage", USAGE, lambda c: c.usage.list(), _usage),
    "sip trunk": (
        "GET /sip-trunks/s1",
        TRUNK,
        lambda c: c.sip_trunks.get("s1"),
        lambda t: (t.address == "pbx.acme.example") or pytest.fail(repr(t)),
    ),
    "voices": (
        "GET /voices",
        VOICES,
        lambda c: c.voices.list(),
        lambda v: (v[0].description.nl == "Pim (Nederlands)") or pytest.fail(repr(v)),
    ),
    "byok keys": (
        "POST /byok",
        BYOK_KEYS,
        lambda c: c.byok.add(provider="openai", api_key="sk-proj-test"),
        lambda k: (k.openai_secret_id == "vault-secret-id-2") or pytest.fail(repr(k)),
    ),
    "byok providers": (
        "GET /byok/config",
        BYOK_PROVIDERS,
        lambda c: c.byok.list_providers(),
        lambda p: (p[1].docs_url == "https://platform.openai.com/docs") or pytest.fail(repr(p)),
    ),
    "domain": (
        "GET /domains",
        DOMAIN,
        lambda c: c.domains.get(),
        lambda d: (d.status == "pending" and len(d.records) == 2) or pytest.fail(repr(d)),
    ),
    "resend domains": (
        "GET /domains/sync",
        RESEND_DOMAINS,
        lambda c: c.domains.list_resend_domains(),
        lambda r: (r.domains[0].status == "verified") or pytest.fail(repr(r)),
    ),
    "analysis template": (
        "GET /analysis-templates/a1",
        ANALYSIS_TEMPLATE,
        lambda c: c.analysis_templates.get("a1"),
        lambda a: (a.name == "Lead Qualification") or pytest.fail(repr(a)),
    ),
    "organization": (
        "GET /organizations",
        ORGANIZATION,
        lambda c: c.organization.get(),
        lambda o: (
            (o.minutes_balance == 500.5 and o.children[0].name == "Acme Benelux") or pytest.fail(repr(o))
        ),
    ),
    "campaign": (
        f"GET /campaigns/{CAMPAIGN_ID}",
        CAMPAIGN,
        lambda c: c.campaigns.get(CAMPAIGN_ID),
        lambda c: (c.failed_leads == 3) or pytest.fail(repr(c)),
    ),
    "campaign leads": (
        f"GET /campaigns/{CAMPAIGN_ID}/leads",
        LEADS,
        lambda c: c.campaigns.list_leads(CAMPAIGN_ID),
        _leads,
    ),
    "older usage log": (
        "GET /usage",
        USAGE_OLDER,
        lambda c: c.usage.list(),
        lambda page: (
            (page.items[0].minutes_used == 3 and page.items[0].duration_sec is UNSET)
            or pytest.fail(repr(page))
        ),
    ),
    "older domain": (
        "GET /domains",
        DOMAIN_OLDER,
        lambda c: c.domains.get(),
        lambda d: (d.status == "verified") or pytest.fail(repr(d)),
    ),
    "older flat tool template": (
        "GET /tool-templates/t3",
        TOOL_TEMPLATE_FLAT,
        lambda c: c.tool_templates.get("t3"),
        lambda t: (
            (
                isinstance(t, TransferCallToolTemplate)
                and present(present(t.tool_config).destinations)[0].description == "Sales"
            )
            or pytest.fail(repr(t))
        ),
    ),
}


@pytest.mark.parametrize("name", list(DOCUMENTED))
async def test_documented_response_bodies_decode_leniently(name: str, serve: Serve) -> None:
    route, body, call, check = DOCUMENTED[name]
    base = await serve({route: (200, body)})
    async with client_for(base) as client:
        check(await call(client))


@pytest.mark.parametrize("name", list(DOCUMENTED))
async def test_spec_requires_only_what_every_documented_body_carries(name: str, serve: Serve) -> None:
    """The spec's `required` lists were reviewed against the reference: every documented body,
    older documented shapes included, passes the strict decoder too."""
    route, body, call, check = DOCUMENTED[name]
    base = await serve({route: (200, body)})
    async with client_for(base, strict_responses=True) as client:
        check(await call(client))


async def test_a_derived_strict_client_decodes_strictly_after_its_parent(serve: Serve) -> None:
    """Each client keeps its own decoders: a lenient parent that decoded a type first does not
    make a strict client derived from it lenient (nor the other way round)."""
    agent = {key: value for key, value in AGENT["assistant"].items() if key != "name"}  # required
    base = await serve({"GET /assistants/a1": (200, {"assistant": agent})})
    async with client_for(base) as client:
        assert (await client.agents.get("a1")).name is UNSET
        with pytest.raises(APIResponseValidationError, match="name"):
            await client.with_options(strict_responses=True).agents.get("a1")
        assert (await client.agents.get("a1")).name is UNSET


ERRORS: dict[str, tuple[int, dict[str, Any], type[Exception], str]] = {
    "unauthorized": (
        401,
        ERROR_UNAUTHORIZED,
        AuthenticationError,
        "Unauthorized: Invalid or missing API key",
    ),
    "credits": (402, ERROR_CREDITS, InsufficientCreditsError, "Your account has no credits remaining."),
    "rate flat": (429, ERROR_RATE_FLAT, RateLimitError, "Rate limit exceeded"),
    "validation": (400, ERROR_VALIDATION, BadRequestError, "Validation failed"),
    "rate nested": (429, ERROR_RATE_NESTED, RateLimitError, "Too many requests."),
    "missing field": (400, ERROR_MISSING_FIELD, BadRequestError, "Field 'name' is required"),
}


@pytest.mark.parametrize("name", list(ERRORS))
async def test_documented_error_bodies_decode(name: str, serve: Serve) -> None:
    status, body, cls, text = ERRORS[name]
    base = await serve({"GET /voices": (status, body)})
    async with client_for(base, max_retries=0, max_retry_wait=0) as client:
        with pytest.raises(cls) as info:
            await client.voices.list()
    assert text in str(info.value)
    if cls is RateLimitError:
        assert isinstance(info.value, RateLimitError)
        assert name == "rate nested" or info.value.retry_after == 45


def _without(body: dict[str, Any], *path: str | int) -> dict[str, Any]:
    copy = json.loads(json.dumps(body))
    node: Any = copy
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return cast(dict[str, Any], copy)


# (route, body with a field the spec requires left out, call, where the gap must show up)
GAPS: dict[str, tuple[str, dict[str, Any], Callable[[AsyncFlireo], Awaitable[Any]], Callable[[Any], Any]]] = {
    "call list without updated_at": (
        "GET /calls",
        _without(CALL_LIST, "calls", 0, "updated_at"),
        lambda c: c.calls.list(),
        lambda page: (page.items[0].updated_at, page.items[0].status == "ended"),
    ),
    "campaign without failed_leads": (
        f"GET /campaigns/{CAMPAIGN_ID}",
        _without(CAMPAIGN, "campaign", "failed_leads"),
        lambda c: c.campaigns.get(CAMPAIGN_ID),
        lambda campaign: (campaign.failed_leads, campaign.completed_leads == 45),
    ),
    "domain without org_id": (
        "GET /domains",
        _without(DOMAIN, "domain", "org_id"),
        lambda c: c.domains.get(),
        lambda domain: (domain.org_id, domain.domain_name == "mail.acme.example"),
    ),
    "agent without llm_config": (
        f"GET /assistants/{AGENT_ID}",
        _without(AGENT, "assistant", "llm_config"),
        lambda c: c.agents.get(AGENT_ID),
        lambda agent: (agent.llm_config, agent.stt_config.provider == "deepgram"),
    ),
    "usage without summary": (
        "GET /usage",
        _without(USAGE, "summary"),
        lambda c: c.usage.list(),
        lambda page: (page.response.summary, page.summary is None and len(page.items) == 1),
    ),
}


@pytest.mark.parametrize("name", list(GAPS))
async def test_a_missing_required_field_decodes_as_unset_and_fails_in_strict_mode(
    name: str, serve: Serve
) -> None:
    route, body, call, probe = GAPS[name]
    base = await serve({route: (200, body)})
    async with client_for(base) as client:
        missing, rest_is_intact = probe(await call(client))
    assert missing is UNSET
    assert rest_is_intact
    async with client_for(base, strict_responses=True) as strict:
        with pytest.raises(APIResponseValidationError, match="required field is missing"):
            await call(strict)


async def test_one_gap_never_costs_a_page_of_usage_logs(serve: Serve) -> None:
    row = USAGE["logs"][0]
    logs = [{**row, "id": f"log-{i}"} for i in range(1000)]
    del logs[500]["created_at"]
    body = {
        "logs": logs,
        "pagination": {"total": 1000, "limit": 1000, "offset": 0},
        "summary": USAGE["summary"],
    }
    base = await serve({"GET /usage": (200, body)})
    async with client_for(base) as client:
        page = await client.usage.list(limit=1000)
    assert [log.id for log in page.items] == [f"log-{i}" for i in range(1000)]
    assert page.items[500].created_at is UNSET
    assert page.items[501].created_at == dt.datetime(2026, 1, 7, 10, 3, tzinfo=dt.timezone.utc)


async def test_each_gap_is_logged_once_per_model_and_field(
    serve: Serve, fresh_gap_log: None, caplog: pytest.LogCaptureFixture
) -> None:
    body = _without(CALL_LIST, "calls", 0, "updated_at")
    body["calls"].append({**body["calls"][0], "id": "call-2"})
    base = await serve({"GET /calls": (200, body)})
    caplog.set_level(logging.DEBUG, logger="flireo_async")
    async with client_for(base) as client:
        for _ in range(3):
            page = await client.calls.list()
            assert [c.updated_at for c in page.items] == [UNSET, UNSET]
    gaps = [r for r in caplog.records if "Call.updated_at" in r.getMessage()]
    assert len(gaps) == 1
    assert gaps[0].levelno == logging.DEBUG


async def test_a_nested_part_missing_keeps_the_object_and_the_raw_value(serve: Serve) -> None:
    """A tool without its required description: the agent survives; `llm_config.tools` is UNSET and
    the raw list is kept in `llm_config.extra` (the type of `tools` admits UNSET; a FunctionTool's
    `description` does not, because users build FunctionTools for requests)."""
    body = _without(AGENT, "assistant", "llm_config", "tools", 0, "description")
    base = await serve({f"GET /assistants/{AGENT_ID}": (200, body)})
    async with client_for(base) as client:
        agent = await client.agents.get(AGENT_ID)
    assert present(agent.llm_config).model == "gpt-4o-mini"
    assert present(agent.llm_config).tools is UNSET
    assert present(agent.llm_config).extra["tools"] == body["assistant"]["llm_config"]["tools"]
    async with client_for(base, strict_responses=True) as strict:
        with pytest.raises(APIResponseValidationError, match=r"tools\[0\]\.description"):
            await strict.agents.get(AGENT_ID)


async def test_an_object_without_its_id_still_fails(serve: Serve) -> None:
    base = await serve({"GET /calls": (200, _without(CALL_LIST, "calls", 0, "id"))})
    async with client_for(base) as client:
        with pytest.raises(APIResponseValidationError, match=r"calls\[0\]\.id"):
            await client.calls.list()


def test_response_only_fields_admit_unset_and_ids_do_not() -> None:
    """The typing choice: what a server sends may be absent (`T | UnsetType`), except ids and
    the items of a page; fields of objects users also send keep their required types."""
    from flireo_async.models import Call, CallList, OutboundCallResponse, STTConfig

    hints = typing.get_type_hints(Call)
    assert hints["id"] is str
    assert UnsetType in typing.get_args(hints["status"])
    assert UnsetType in typing.get_args(hints["updated_at"])
    assert typing.get_type_hints(CallList)["calls"] == list[Call]
    assert typing.get_type_hints(OutboundCallResponse)["call_id"] is str
    assert typing.get_type_hints(STTConfig)["provider"] is str


@pytest.mark.parametrize("verified", [True, False])
async def test_older_domain_shape_derives_status(verified: bool, serve: Serve) -> None:
    body = json.loads(json.dumps(DOMAIN_OLDER))
    body["domain"]["verified"] = verified
    base = await serve({"GET /domains": (200, body)})
    async with client_for(base, strict_responses=True) as client:
        domain = await client.domains.get()
    assert isinstance(domain, Domain)
    assert domain.status == ("verified" if verified else "pending")
    assert domain.verified is verified


@pytest.mark.parametrize(
    ("older_type", "cls"),
    [
        ("function", FunctionToolTemplate),
        ("endCall", EndCallToolTemplate),
        ("transferCall", TransferCallToolTemplate),
    ],
)
async def test_older_flat_tool_template_is_normalised(older_type: str, cls: type, serve: Serve) -> None:
    flat = {
        "id": "t9",
        "name": "lookup",
        "description": "Look a customer up",
        "type": older_type,
        "url": "https://x.example/hook",
        "async": True,
        "asyncResponse": "One moment",
        "parameters": {"type": "object"},
        "created_at": "2026-01-07T10:00:00.000Z",
    }
    if older_type == "transferCall":
        flat = {**TOOL_TEMPLATE_FLAT["tool_template"]}
    elif older_type == "endCall":
        flat = {k: v for k, v in flat.items() if k in ("id", "name", "type", "created_at")}
    base = await serve({"GET /tool-templates/t9": (200, {"tool_template": flat})})
    async with client_for(base, strict_responses=True) as client:
        template = await client.tool_templates.get("t9")
    assert isinstance(template, cls)
    assert template.tool_type == older_type
    assert template.extra == {}
    if older_type == "function":
        assert isinstance(template, FunctionToolTemplate)
        assert present(template.tool_config).url == "https://x.example/hook"
        assert present(template.tool_config).async_ is True
        assert present(template.tool_config).extra == {"asyncResponse": "One moment"}
        assert template.description == "Look a customer up"


@pytest.mark.parametrize("method", ["create", "refresh", "sync_resend_domain"])
async def test_domain_writes_return_a_domain_never_none(method: str, serve: Serve) -> None:
    from flireo_async._generated.resources.domains import DomainsResource

    assert typing.get_type_hints(getattr(DomainsResource, method))["return"] is Domain
    assert typing.get_type_hints(DomainsResource.get)["return"] == Domain | None
    routes: dict[str, Route] = {
        "POST /domains": (201, {"domain": None}),
        "POST /domains/refresh": (200, {"domain": None}),
        "POST /domains/sync": (200, {"domain": None, "message": "synced"}),
    }
    base = await serve(routes)
    async with client_for(base) as client:
        call: Callable[[], Awaitable[Any]] = {
            "create": lambda: client.domains.create(domain_name="mail.acme.example"),
            "refresh": lambda: client.domains.refresh(),
            "sync_resend_domain": lambda: client.domains.sync_resend_domain(resend_domain_id="r1"),
        }[method]
        with pytest.raises(APIResponseValidationError):
            await call()


async def test_usage_summary_is_on_the_page(serve: Serve) -> None:
    base = await serve({"GET /usage": (200, USAGE)})
    async with client_for(base) as client:
        page = await client.usage.list()
        assert isinstance(page.summary, UsageSummary)
        assert page.summary.total_calls == 42
        assert page.response.summary == page.summary
        async for later in client.usage.list().pages():
            assert later.summary == page.summary


# == 2. Never hang, never balloon, never loop ====================================================


class FakeClock:
    """A monotonic clock the test moves by hand (for the client's rate limiter)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def client_with_clock(base: str, clock: FakeClock, **settings: Any) -> AsyncFlireo:
    config = ClientConfig(api_key=KEY, base_url=base, rate_limit=None, **settings)
    return AsyncFlireo._from_transport(Transport(config, pacer=LocalPacer(None, clock=clock)))


FAR_RETRY_AFTER = {
    "a day": "86400",
    "infinity": "inf",
    "a date in 9999": "Fri, 31 Dec 9999 23:59:59 GMT",
}


@pytest.mark.parametrize("retry_after", list(FAR_RETRY_AFTER))
async def test_a_far_retry_after_raises_at_once_and_never_freezes_the_client(
    retry_after: str, serve: Serve, sleeps: SleepGuard
) -> None:
    answers = iter([429])

    async def voices(_: web.Request) -> web.Response:
        status = next(answers, 200)
        if status == 429:
            return web.json_response(
                {"error": "Rate limit exceeded"},
                status=429,
                headers={"Retry-After": FAR_RETRY_AFTER[retry_after]},
            )
        return web.json_response({"voices": []})

    base = await serve({"GET /voices": voices})
    clock = FakeClock()
    sleeps.limit = 5.0
    async with client_with_clock(base, clock, max_retry_wait=5) as client:
        with pytest.raises(RateLimitError) as info:
            await client.voices.list()
        assert info.value.retry_after is not None
        assert info.value.retry_after > 5
        pacer = client._transport.pacer
        assert pacer.cooling_down(), "the other tasks of the client pause too"
        clock.now += 5.001
        assert not pacer.cooling_down(), "the shared cool-down is capped at max_retry_wait"
        assert await client.voices.list() == []
    assert serve.seen == ["GET /api/v1/voices", "GET /api/v1/voices"]  # type: ignore[attr-defined]


async def test_later_calls_wait_at_most_their_max_retry_wait_or_fail_fast(
    serve: Serve, sleeps: SleepGuard
) -> None:
    hits: list[int] = []

    async def voices(_: web.Request) -> web.Response:
        hits.append(1)
        if len(hits) == 1:
            return web.json_response(
                {"error": "Rate limit exceeded"}, status=429, headers={"Retry-After": "86400"}
            )
        return web.json_response({"voices": []})

    base = await serve({"GET /voices": voices})
    sleeps.limit = 0.3
    async with client_for(base, max_retry_wait=30) as client:
        with pytest.raises(RateLimitError):
            await client.voices.list()
        impatient = client.with_options(max_retry_wait=0.2)
        with pytest.raises(RateLimitError) as info:
            await impatient.voices.list()
        assert info.value.retry_after is not None
        assert 0.2 < info.value.retry_after <= 30
        assert len(hits) == 1, "failing fast sends nothing"


async def test_an_exhausted_window_with_a_far_reset_waits_at_most_max_retry_wait(
    serve: Serve, sleeps: SleepGuard
) -> None:
    far = str(int(time.time()) + 86400)

    async def voices(_: web.Request) -> web.Response:
        headers = {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": far}
        return web.json_response({"voices": []}, headers=headers)

    base = await serve({"GET /voices": voices})
    # Pacing itself waits up to 60/95 s for a token at 100/min; the cool-down must stay at 0.1 s
    # (it used to be a fixed 60 s, whatever max_retry_wait said).
    sleeps.limit = 1.0
    async with AsyncFlireo(api_key=KEY, base_url=base, rate_limit=100, max_retry_wait=0.1) as client:
        for _ in range(3):
            assert await client.voices.list() == []
    assert max(sleeps.requested, default=0.0) <= 1.0


async def test_a_negative_remaining_count_never_stalls_pacing(serve: Serve, sleeps: SleepGuard) -> None:
    async def voices(_: web.Request) -> web.Response:
        return web.json_response({"voices": []}, headers={"X-RateLimit-Remaining": "-1000000000"})

    base = await serve({"GET /voices": voices})
    sleeps.limit = 1.0  # one token at 100/min is 60/95 s away
    async with AsyncFlireo(api_key=KEY, base_url=base, rate_limit=100) as client:
        for _ in range(3):
            assert await client.voices.list() == []


def test_max_response_bytes_defaults_to_32_mib() -> None:
    assert AsyncFlireo(api_key=KEY).config.max_response_bytes == 32 * 1024 * 1024
    with pytest.raises(FlireoError, match="max_response_bytes"):
        AsyncFlireo(api_key=KEY, max_response_bytes=0)


async def test_a_declared_oversized_body_is_refused_before_reading(raw_server: Any) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 268435456\r\n\r\n"
            + b"[" * 1024
        )
        await writer.drain()
        writer.close()

    base = await raw_server(handler)
    async with client_for(base, max_response_bytes=4096, max_retries=0) as client:
        with pytest.raises(ResponseTooLargeError) as info:
            await client.voices.list()
    assert info.value.limit == 4096
    assert "max_response_bytes" in str(info.value)


async def test_a_small_compressed_body_that_inflates_past_the_cap_is_refused(serve: Serve) -> None:
    import gzip

    inflated = b'{"voices": [' + b" " * (1024 * 1024) + b"]}"
    compressed = gzip.compress(inflated)
    assert len(compressed) < 8192

    async def bomb(_: web.Request) -> web.Response:
        return web.Response(
            body=compressed, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
        )

    base = await serve({"GET /voices": bomb})
    async with client_for(base, max_response_bytes=64 * 1024, max_retries=0) as client:
        with pytest.raises(ResponseTooLargeError):
            await client.voices.list()
    async with client_for(base, max_response_bytes=2 * 1024 * 1024, max_retries=0) as client:
        assert await client.voices.list() == []


async def test_a_body_of_declared_length_within_the_cap_is_read_whole(serve: Serve) -> None:
    body = b'{"voices": []' + b" " * 5000 + b"}"

    async def exact(_: web.Request) -> web.Response:
        return web.Response(body=body, headers={"Content-Type": "application/json"})

    base = await serve({"GET /voices": exact})
    async with client_for(base, max_response_bytes=len(body), max_retries=0) as client:
        assert await client.voices.list() == []
    async with client_for(base, max_response_bytes=len(body) - 1, max_retries=0) as client:
        with pytest.raises(ResponseTooLargeError):
            await client.voices.list()


async def test_a_streamed_oversized_body_is_not_read_past_the_cap(serve: Serve) -> None:
    total = 16 * 1024 * 1024
    written: list[int] = []
    finished = asyncio.Event()

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        sent = 0
        chunk = b" " * 65536
        try:
            while sent < total:
                await response.write(chunk)
                sent += len(chunk)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            written.append(sent)
            finished.set()
        return response

    base = await serve({"GET /voices": endless})
    async with client_for(base, max_response_bytes=256 * 1024, max_retries=0) as client:
        with pytest.raises(ResponseTooLargeError):
            await client.voices.list()
        await finished.wait()  # the server stops once its writes fail (or after the whole body)
    assert written[0] < total, "the client stopped reading at the cap and dropped the connection"


@pytest.mark.parametrize("echoed_limit", [-1, 0, 7])
async def test_pagination_steps_by_items_received_whatever_limit_the_server_echoes(
    echoed_limit: int, serve: Serve
) -> None:
    offsets: list[int] = []
    total = 250

    async def calls(request: web.Request) -> web.Response:
        offset = int(request.query.get("offset", "0"))
        offsets.append(offset)
        if offset < 0 or len(offsets) > 20:
            return web.json_response({"error": "bad offset"}, status=400)
        items = [
            {**CALL_LIST["calls"][0], "id": f"call-{i}"} for i in range(offset, min(offset + 100, total))
        ]
        return web.json_response(
            {"calls": items, "pagination": {"total": total, "limit": echoed_limit, "offset": offset}}
        )

    base = await serve({"GET /calls": calls})
    async with client_for(base, prefetch=2) as client:
        ids = [call.id async for call in client.calls.list()]
    assert ids == [f"call-{i}" for i in range(total)]
    assert sorted(set(offsets)) == [0, 100, 200]


async def test_pagination_follows_short_pages_without_skipping(serve: Serve) -> None:
    total = 250

    async def calls(request: web.Request) -> web.Response:
        offset = int(request.query.get("offset", "0"))
        size = 100 if offset == 0 else 60  # later pages come back shorter than planned
        items = [
            {**CALL_LIST["calls"][0], "id": f"call-{i}"} for i in range(offset, min(offset + size, total))
        ]
        return web.json_response(
            {"calls": items, "pagination": {"total": total, "limit": 100, "offset": offset}}
        )

    base = await serve({"GET /calls": calls})
    async with client_for(base, prefetch=3) as client:
        ids = [call.id async for call in client.calls.list()]
    assert ids == [f"call-{i}" for i in range(total)]


async def test_pagination_stops_on_an_empty_page(serve: Serve) -> None:
    async def calls(request: web.Request) -> web.Response:
        offset = int(request.query.get("offset", "0"))
        items = [{**CALL_LIST["calls"][0], "id": "call-0"}] if offset == 0 else []
        return web.json_response(
            {"calls": items, "pagination": {"total": 10**9, "limit": 0, "offset": offset}}
        )

    base = await serve({"GET /calls": calls})
    async with client_for(base, prefetch=1) as client:
        ids = [call.id async for call in client.calls.list()]
    assert ids == ["call-0"]


def _call_pages(total: int, size: int, bad: dict[int, dict[str, Any]] | None = None) -> Route:
    """A paginated ``GET /calls`` of ``total`` calls; ``bad`` replaces the call at an index."""

    async def calls(request: web.Request) -> web.Response:
        offset = int(request.query.get("offset", "0"))
        items = [
            (bad or {}).get(i, {**CALL_LIST["calls"][0], "id": f"call-{i}"})
            for i in range(offset, min(offset + size, total))
        ]
        return web.json_response(
            {"calls": items, "pagination": {"total": total, "limit": size, "offset": offset}}
        )

    return calls


async def test_item_iteration_decodes_the_same_items_as_the_pages(serve: Serve) -> None:
    base = await serve({"GET /calls": _call_pages(450, 200)})
    async with client_for(base, prefetch=2) as client:
        listing = client.calls.list(limit=200)
        items = [call async for call in listing]
        from_pages = [call async for page in listing.pages() for call in page.items]
    assert len(items) == 450
    assert items == from_pages
    assert [type(call) for call in items] == [type(call) for call in from_pages]


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
async def test_a_bad_item_fails_where_it_is_reached_with_the_page_error(serve: Serve, strict: bool) -> None:
    """Items are decoded as they are iterated: the ones before a bad item are delivered, then
    the error an eagerly decoded page raises, naming the item by its index in the page."""
    broken = {**CALL_LIST["calls"][0], "id": "call-305", "started_at": "not a date"}
    base = await serve({"GET /calls": _call_pages(450, 200, {305: broken})})
    async with client_for(base, strict_responses=strict) as client:
        seen: list[str] = []

        async def iterate() -> None:
            async for call in client.calls.list(limit=200):
                seen.append(call.id)

        with pytest.raises(APIResponseValidationError) as lazily:
            await iterate()
        with pytest.raises(APIResponseValidationError) as eagerly:
            await client.calls.list(limit=200, offset=200)
    assert seen == [f"call-{i}" for i in range(305)]
    assert str(lazily.value) == str(eagerly.value)
    assert "calls[105].started_at" in str(lazily.value)
    assert lazily.value.status == eagerly.value.status == 200
    assert lazily.value.__cause__ is None
    assert lazily.value.__suppress_context__


async def test_a_page_whose_items_are_not_a_list_fails_as_a_whole(serve: Serve) -> None:
    base = await serve({"GET /calls": (200, {"calls": None, "pagination": {"total": 1}})})
    async with client_for(base) as client:
        with pytest.raises(APIResponseValidationError, match="calls"):
            await client.calls.list().__aiter__().__anext__()


@attrs.frozen(kw_only=True)
class _Box(Model):
    items: list[Pagination] = attrs.field(metadata={"wire": "items", "aliases": ("data",)})
    pagination: Pagination | None = attrs.field(default=None, metadata={"wire": "pagination"})
    extra: dict[str, Any] = attrs.field(factory=dict, metadata={"extra": True})


def test_items_under_another_spelling_are_decoded_with_the_page() -> None:
    op: Operation[Any] = Operation(
        id="listBoxes", method="GET", path="/boxes", result_type=_Box, idempotent=True, items="items"
    )
    transport = Transport(ClientConfig.from_env("key", None, rate_limit=None))
    body = json.dumps({"data": [{"total": 3}, {"total": 4}], "pagination": {"total": 2}}).encode()
    plain = transport._decode_success(op, 200, {}, body)
    deferred = transport._decode_success(attrs.evolve(op, defer_items=True), 200, {}, body)
    assert isinstance(deferred, DeferredItems)
    assert deferred.rows == plain.items == [Pagination(total=3), Pagination(total=4)]
    assert deferred.decode_rows(deferred.rows) == plain.items
    assert deferred.decode_row(deferred.rows[0], Pagination) is deferred.rows[0]
    assert deferred.response.pagination == Pagination(total=2)


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


async def test_deeply_nested_json_is_a_flireo_error_never_a_recursion_error(serve: Serve) -> None:
    async def nested(_: web.Request) -> web.Response:
        return web.Response(body=deep(200_000), content_type="application/json")

    async def nested_error(_: web.Request) -> web.Response:
        return web.Response(status=500, body=deep(200_000), content_type="application/json")

    base = await serve({"GET /voices": nested, "GET /organizations": nested_error})
    async with client_for(base, max_retries=0) as client:
        with pytest.raises(APIResponseValidationError, match="nested too deeply"):
            await client.voices.list()
        with pytest.raises(InternalServerError):
            await client.organization.get()


@pytest.mark.parametrize("own_session", [True, False], ids=["client's session", "user's session"])
async def test_aiohttp_does_not_add_attempts_of_its_own(raw_server: Any, own_session: bool) -> None:
    """aiohttp repeats a failed GET or DELETE once by itself: switched off in the session the
    client creates, refused by a per-request middleware in a session the user passes."""
    arrivals: list[bytes] = []

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            arrivals.append(await read_request(reader))
        except asyncio.IncompleteReadError:
            pass
        writer.close()

    base = await raw_server(drop)
    async with contextlib.AsyncExitStack() as stack:
        session = None if own_session else await stack.enter_async_context(aiohttp.ClientSession())
        client = await stack.enter_async_context(client_for(base, max_retries=2, session=session))
        with pytest.raises(APIConnectionError) as info:
            await client.voices.list()
        assert info.value.sent is True
        with pytest.raises(APIConnectionError):
            await client.agents.delete("a1")
        assert client._transport.shared.repeats_off is own_session
    assert [a.split(b" ", 1)[0] for a in arrivals] == [b"GET"] * 3 + [b"DELETE"] * 3


# == 3. Send nothing we should not ===============================================================


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.campaigns.remove_lead(CAMPAIGN_ID, ".."),
        lambda c: c.campaigns.remove_lead("..", "lead-1"),
        lambda c: c.agents.delete("."),
        lambda c: c.agents.get(""),
        lambda c: c.calls.get(".."),
    ],
    ids=["lead ..", "campaign ..", "agent .", "empty", "call .."],
)
async def test_dot_segment_and_empty_ids_are_refused_before_sending(
    call: Callable[[AsyncFlireo], Awaitable[Any]], serve: Serve
) -> None:
    async def anything(_: web.Request) -> web.Response:
        return web.json_response({"success": True})

    base = await serve({"* /{tail:.*}": anything})
    async with client_for(base) as client:
        with pytest.raises(RequestValidationError, match=r"relative path segment|non-empty"):
            await call(client)
    assert serve.seen == []  # type: ignore[attr-defined]


async def test_ids_that_merely_contain_dots_are_sent_encoded(serve: Serve) -> None:
    async def agent(request: web.Request) -> web.Response:
        return web.json_response({"assistant": {**AGENT["assistant"], "id": request.match_info["id"]}})

    base = await serve({"GET /assistants/{id}": agent})
    async with client_for(base) as client:
        assert (await client.agents.get("...")).id == "..."
        assert (await client.agents.get("a/../b")).id == "a/../b"
    assert serve.seen == ["GET /api/v1/assistants/...", "GET /api/v1/assistants/a%2F..%2Fb"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
async def test_nan_and_infinity_are_refused_before_sending(value: float, serve: Serve) -> None:
    async def create(_: web.Request) -> web.Response:
        return web.json_response({"assistant": AGENT["assistant"]}, status=201)

    base = await serve({"POST /assistants": create})
    async with client_for(base) as client:
        with pytest.raises(RequestValidationError) as info:
            await client.agents.create(name="x", silence_timeout_seconds=value)
        assert info.value.field == "silence_timeout_seconds"
        with pytest.raises(RequestValidationError) as nested:
            await client.agents.create(  # type: ignore[call-overload]  # a plain dict body
                {"name": "x", "llm_config": {"provider": "openai", "model": "m", "temperature": value}}
            )
        assert nested.value.field == "llm_config.temperature"
    assert serve.seen == []  # type: ignore[attr-defined]


async def test_the_fake_server_rejects_nan_and_infinity() -> None:
    from flireo_async.testing import FakeFlireo

    async with FakeFlireo(rate_limit=None) as fake, aiohttp.ClientSession() as session:
        for literal in (b"NaN", b"Infinity", b"-Infinity"):
            async with session.post(
                fake.url + "/assistants",
                data=b'{"name": "x", "silence_timeout_seconds": ' + literal + b"}",
                headers={"Authorization": f"Bearer {fake.api_key}", "Content-Type": "application/json"},
            ) as resp:
                assert resp.status == 400, literal
                assert "not valid JSON" in (await resp.json())["message"]
        assert fake.state.agents == {}


def _query_server(seen: list[dict[str, str]], items: str = "calls") -> Handler:
    async def listing(request: web.Request) -> web.Response:
        seen.append(dict(request.query))
        return web.json_response({items: [], "pagination": {"total": 0, "limit": 100, "offset": 0}})

    return listing


async def test_none_in_a_query_means_not_sent(serve: Serve) -> None:
    seen: list[dict[str, str]] = []
    base = await serve({"GET /calls": _query_server(seen)})
    async with client_for(base) as client:
        await client.calls.list(status=None, limit=None, start_date=None)
    assert seen == [{}]


@pytest.mark.parametrize(
    ("arguments", "field", "problem"),
    [
        ({"limit": "10"}, "limit", "must be an integer"),
        ({"limit": 2.5}, "limit", "must be an integer"),
        ({"limit": True}, "limit", "must be an integer"),
        ({"limit": 0}, "limit", "at least 1"),
        ({"limit": 1001}, "limit", "at most 1000"),
        ({"offset": -1}, "offset", "at least 0"),
        ({"status": 3}, "status", "must be a string"),
        ({"start_date": "2026-01-07"}, "start_date", "must be a datetime or a date"),
        (
            {"start_date": dt.date(2026, 2, 1), "end_date": dt.date(2026, 1, 1)},
            "end_date",
            "is before start_date",
        ),
    ],
)
async def test_query_values_are_checked_against_the_spec(
    arguments: dict[str, Any], field: str, problem: str, serve: Serve
) -> None:
    seen: list[dict[str, str]] = []
    base = await serve({"GET /calls": _query_server(seen)})
    async with client_for(base) as client:
        with pytest.raises(RequestValidationError, match=problem) as info:
            await client.calls.list(**arguments)
        assert info.value.field == field
        with pytest.raises(RequestValidationError, match=problem):
            await client.with_raw_response.calls.list(**arguments)
    assert seen == []


async def test_a_date_is_the_start_of_that_day_in_utc(serve: Serve) -> None:
    seen: list[dict[str, str]] = []
    base = await serve({"GET /usage": _query_server(seen, "logs")})
    async with client_for(base) as client:
        await client.with_raw_response.usage.list(
            start_date=dt.date(2026, 1, 7), end_date=dt.datetime(2026, 1, 8, 12, 30), limit=1000, offset=0
        )
    assert seen == [
        {
            "start_date": "2026-01-07T00:00:00.000Z",
            "end_date": "2026-01-08T12:30:00.000Z",
            "limit": "1000",
            "offset": "0",
        }
    ]


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("base_url", 123),
        ("timeout", "5"),
        ("timeout", math.inf),
        ("max_retries", "2"),
        ("max_retries", True),
        ("max_concurrency", 2.5),
        ("rate_limit", "100"),
        ("prefetch", None),
        ("max_retry_wait", math.nan),
        ("strict_responses", "yes"),
        ("max_response_bytes", 1.5),
    ],
)
def test_configuration_types_are_checked(setting: str, value: Any) -> None:
    with pytest.raises(FlireoError, match=setting):
        AsyncFlireo(api_key=KEY, **{setting: value})
    client = AsyncFlireo(api_key=KEY)
    with pytest.raises(FlireoError, match=setting):
        client.with_options(**{setting: value})


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        (KEY + "\n", "whitespace"),
        (" " + KEY, "whitespace"),
        (KEY[:10] + " " + KEY[10:], "whitespace"),
        (KEY + "\x00", "control"),
        (KEY + "\x7f", "control"),
        (KEY + "é", "non-ASCII"),
        (b"fl_live_bytes", "must be a string"),
    ],
)
def test_an_api_key_with_whitespace_or_control_characters_is_refused(key: Any, problem: str) -> None:
    with pytest.raises(FlireoError, match=problem) as info:
        AsyncFlireo(api_key=key)
    assert KEY not in str(info.value)
    assert "fl_live" not in repr(info.value)


# == 4. Secrets and lifecycle ====================================================================


def reachable(error: BaseException) -> list[BaseException]:
    """``error`` and every exception reachable from it through __cause__, __context__ and args."""
    found: list[BaseException] = []
    stack: list[Any] = [error]
    while stack:
        item = stack.pop()
        if not isinstance(item, BaseException) or any(item is seen for seen in found):
            continue
        found.append(item)
        stack += [item.__cause__, item.__context__, *item.args]
    return found


def assert_key_absent(error: BaseException) -> None:
    for item in reachable(error):
        for text in (repr(item), str(item), repr(item.args), repr(vars(item))):
            assert KEY not in text, f"the API key leaks through {type(item).__name__}"


HOSTILE_ANSWERS: dict[str, Callable[[bytes], bytes]] = {
    # The garbage status line echoes the request's Authorization header back.
    "garbage status line": lambda head: (
        b"HTX/9.9 "
        + head.split(b"Authorization: ", 1)[1].split(b"\r\n", 1)[0]
        + b" \x00\x01 nonsense\r\n\r\n"
    ),
    "garbage status line, no echo": lambda head: b"\x16\x03\x01 not http at all\r\n\r\n",
    "one enormous header": lambda head: b"HTTP/1.1 200 OK\r\nX-Flood: " + b"a" * 100_000 + b"\r\n\r\n",
    "a flood of headers": lambda head: b"HTTP/1.1 200 OK\r\n" + b"X-Flood: a\r\n" * 40_000 + b"\r\n",
    "an echoed enormous header": lambda head: b"HTTP/1.1 200 OK\r\nX-Echo: " + head * 200 + b"\r\n\r\n",
}


@pytest.mark.parametrize("answer", list(HOSTILE_ANSWERS))
async def test_the_api_key_is_in_no_exception_reachable_from_ours(answer: str, raw_server: Any) -> None:
    async def hostile(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await read_request(reader)
            writer.write(HOSTILE_ANSWERS[answer](head))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        writer.close()

    base = await raw_server(hostile)
    async with client_for(base, max_retries=1) as client:
        for call in (
            client.voices.list,
            lambda: client.calls.create(destination="+31612345678", assistant_id="a"),
        ):
            with pytest.raises(FlireoError) as info:
                await call()
            assert_key_absent(info.value)


async def test_a_request_after_close_raises_and_opens_nothing(serve: Serve) -> None:
    base = await serve({"GET /voices": (200, VOICES)})
    client = client_for(base)
    derived = client.with_options(timeout=5)
    assert await derived.voices.list()
    await derived.close()  # a derived client closes nothing
    assert await client.voices.list()
    session = client._transport.session
    await client.close()
    for closed in (client, derived):
        with pytest.raises(ClientClosedError, match="closed") as info:
            await closed.voices.list()
        assert info.value.sent is False
    assert client._transport.shared.session is session
    assert session.closed
    assert serve.seen == ["GET /api/v1/voices", "GET /api/v1/voices"]  # type: ignore[attr-defined]


async def test_a_closed_session_given_by_the_user_is_a_clear_error(serve: Serve) -> None:
    base = await serve({"GET /voices": (200, VOICES)})
    session = aiohttp.ClientSession()
    client = AsyncFlireo(api_key=KEY, base_url=base, rate_limit=None, session=session)
    assert await client.voices.list()
    await session.close()
    with pytest.raises(ClientClosedError, match="session=") as info:
        await client.voices.list()
    assert info.value.sent is False


def test_one_client_from_two_event_loops_fails_clearly() -> None:
    from flireo_async.testing import run_in_thread

    with run_in_thread(rate_limit=None) as fake:
        client = AsyncFlireo(api_key=fake.api_key, base_url=fake.url, rate_limit=None)
        first = asyncio.new_event_loop()
        try:
            assert first.run_until_complete(client.voices.list())
            with pytest.raises(EventLoopMismatchError, match="event loop") as info:
                asyncio.run(client.voices.list())
            assert info.value.sent is False
            assert first.run_until_complete(client.voices.list()), "the first loop keeps working"
            first.run_until_complete(client.close())
        finally:
            first.close()
    assert len(fake.requests) == 2


# == 5. Webhook receiver edges ===================================================================


def webhook(event: str, **fields: Any) -> dict[str, Any]:
    call = {
        "id": "4d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09",
        "type": "inbound_phone_call",
        "status": "in-progress",
    }
    return {"message": {"type": event, "timestamp": "2026-01-07T12:00:00.000Z", "call": call, **fields}}


def tool_call(call_id: str, name: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": {}}}


@pytest.fixture
async def router_url() -> AsyncIterator[Callable[[WebhookRouter], Awaitable[str]]]:
    servers: list[Any] = []

    async def start(router: WebhookRouter) -> str:
        server = await router.start(port=0)
        servers.append(server)
        return str(server.url)

    yield start
    for server in servers:
        await server.close()


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as resp:
        text = await resp.text()
        return resp.status, json.loads(text) if text else None


async def test_a_tool_handler_raising_cancelled_error_fails_only_that_tool(router_url: Any) -> None:
    router = WebhookRouter(SECRET)

    @router.tool("gives_up")
    async def gives_up(_: Any) -> Any:
        raise asyncio.CancelledError

    @router.tool("lookup")
    async def lookup(_: Any) -> Any:
        return {"name": "Jan"}

    @router.assistant_request
    async def assistant(_: Any) -> Any:
        raise asyncio.CancelledError

    @router.status_update
    async def status(_: Any) -> None:
        raise asyncio.CancelledError

    url = await router_url(router)
    body = json.dumps(
        webhook("tool-calls", tool_call_list=[tool_call("t1", "gives_up"), tool_call("t2", "lookup")])
    ).encode()
    status_code, reply = await post(url, body, sign(body, SECRET))
    assert status_code == 200
    assert reply == {
        "results": [
            {"toolCallId": "t1", "result": {"error": "The tool 'gives_up' failed."}},
            {"toolCallId": "t2", "result": {"name": "Jan"}},
        ]
    }
    body = json.dumps(webhook("assistant-request")).encode()
    assert await post(url, body, sign(body, SECRET)) == (200, {})
    body = json.dumps(webhook("status-update")).encode()
    assert (await post(url, body, sign(body, SECRET)))[0] == 500


def _huge_timestamp_headers(body: bytes) -> dict[str, str]:
    from flireo_async.webhooks import compute_signature

    timestamp = "9" * 5000
    return {
        "X-Webhook-Timestamp": timestamp,
        "X-Webhook-Signature": "sha256=" + compute_signature(body, SECRET, timestamp),
    }


async def test_a_validly_signed_huge_timestamp_is_401_never_500(router_url: Any) -> None:
    body = json.dumps(webhook("status-update")).encode()
    headers = _huge_timestamp_headers(body)
    with pytest.raises(WebhookVerificationError) as info:
        verify(body, headers, SECRET)
    assert info.value.reason is VerificationFailure.STALE_TIMESTAMP
    url = await router_url(WebhookRouter(SECRET))
    assert (await post(url, body, headers))[0] == 401
    unsigned = await router_url(WebhookRouter(None, require_signature=False))
    assert (await post(unsigned, body, headers))[0] == 204


DECODE_FAILURES: dict[str, bytes] = {
    "deeply nested": b'{"message": ' + deep(200_000) + b"}",
    "an integer of 5000 digits": b'{"message": {"type": "x", "n": ' + b"9" * 5000 + b"}}",
    "not UTF-8": b'{"message": "\xff\xfe"}',
    "NaN": b'{"message": {"type": "status-update", "x": NaN}}',
    "not an object": b"[1, 2, 3]",
    "wrong shape": b'{"message": {"type": "tool-calls", "tool_call_list": "nope"}}',
}


@pytest.mark.parametrize("name", list(DECODE_FAILURES))
async def test_every_webhook_decode_failure_is_a_flireo_error_and_a_400(name: str, router_url: Any) -> None:
    body = DECODE_FAILURES[name]
    headers = sign(body, SECRET)
    with pytest.raises(WebhookVerificationError) as info:
        verify(body, headers, SECRET)
    assert info.value.http_status == 400
    assert info.value.__context__ is None, "no parser exception travels along"
    url = await router_url(WebhookRouter(SECRET))
    assert (await post(url, body, headers))[0] == 400


@pytest.mark.parametrize(
    "arguments",
    [
        {"body": "{}", "headers": {}, "secret": SECRET},
        {"body": b"{}", "headers": {}, "secret": SECRET, "tolerance": -1},
        {"body": b"{}", "headers": {}, "secret": b"bytes"},
    ],
    ids=["str body", "negative tolerance", "bytes secret"],
)
def test_verify_raises_only_flireo_errors(arguments: dict[str, Any]) -> None:
    with pytest.raises(FlireoError) as info:
        verify(**arguments)
    assert isinstance(info.value, WebhookUsageError)
