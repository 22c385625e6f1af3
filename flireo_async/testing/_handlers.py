"""One handler per operationId: the fake's business logic.

The server has already authenticated, rate-limited and validated the request against the spec
when a handler runs, so handlers check only what a schema cannot say (a referenced id exists,
a phone number is E.164, a campaign may change status, ...). A handler returns ``(status,
body)`` or ``(status, body, headers)``; it raises :class:`ApiError` for an error response.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._clock import format_timestamp, parse_timestamp
from ._simulation import SimCall, is_e164, is_realtime, minutes
from ._state import BYOK_PROVIDERS

if TYPE_CHECKING:
    from ._server import FakeFlireo

__all__ = ["ApiError", "Context", "Handlers", "Reply", "validation_error"]

JSON = dict[str, Any]
Reply = tuple[int, Any] | tuple[int, Any, dict[str, str]]

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
DEFAULT_STT: JSON = {"provider": "deepgram", "model": "nova-3-general", "language": "nl"}
DEFAULT_LLM: JSON = {"provider": "openai", "model": "gpt-4o-mini", "temperature": 0.7}
DEFAULT_TTS: JSON = {
    "provider": "elevenlabs",
    "voice_id": "21m00Tcm4TlvDq8ikWAM",
    "model": "eleven_flash_v2_5",
}
READ_ONLY = frozenset({"id", "org_id", "created_at", "updated_at"})
ACTIVE_CALL_STATUSES = frozenset({"dialing", "connecting", "ringing", "in-progress"})
SETTABLE_CAMPAIGN_STATUSES = ("draft", "scheduled", "paused", "cancelled")
FINAL_CAMPAIGN_STATUSES = frozenset({"completed", "cancelled"})
_TOOL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
_DAILY_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$")
_DOMAIN_NAME = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
_TOOL_TYPE_ALIASES = {"endCall": "end_call", "transferCall": "transfer_call"}
KNOWN_TOOL_TYPES = ("function", "end_call", "transfer_call")


class ApiError(Exception):
    """An error response: status, flat JSON body, extra headers."""

    def __init__(self, status: int, body: JSON, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {body.get('error')}")
        self.status = status
        self.body = body
        self.headers = headers or {}


def validation_error(*details: str) -> ApiError:
    """400 in the documented flat shape; every detail starts with the field it is about."""
    return ApiError(
        400, {"error": "Validation failed", "message": "; ".join(details), "details": list(details)}
    )


def bad_request(error: str, message: str) -> ApiError:
    return ApiError(400, {"error": error, "message": message})


def not_found(what: str) -> ApiError:
    return ApiError(404, {"error": "Not found", "message": f"{what} not found"})


def conflict(message: str) -> ApiError:
    return ApiError(409, {"error": "Conflict", "message": message})


@dataclass
class Context:
    """What a handler gets: path parameters, typed query parameters and the JSON body."""

    params: dict[str, str]
    query: dict[str, Any]
    body: Any

    @property
    def data(self) -> JSON:
        """The body as an object (``{}`` when there is none)."""
        return self.body if isinstance(self.body, dict) else {}

    def param(self, *names: str) -> str:
        """The first of ``names`` present among the path parameters (specs differ in naming)."""
        for name in names:
            if name in self.params:
                return self.params[name]
        return next(iter(self.params.values()), "")


Handler = Callable[["Handlers", Context], Awaitable[Reply]]
_REGISTRY: dict[str, Handler] = {}


def operation(operation_id: str) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        _REGISTRY[operation_id] = func
        return func

    return register


@dataclass
class Options:
    """Behaviour switches of one fake (see :class:`~flireo_async.testing.FakeFlireo`)."""

    delete_status: int = 200
    leads_pagination: bool = True
    page_delay: float = 0.0
    require_resend_key: bool = True
    domain_verify_seconds: float = 30.0


class Handlers:
    """The handlers of one fake server, bound to its state and simulator."""

    OPERATION_IDS = _REGISTRY

    def __init__(self, fake: FakeFlireo, options: Options) -> None:
        self.fake = fake
        self.state = fake.state
        self.clock = fake.clock
        self.ids = fake.ids
        self.sim = fake.simulator
        self.options = options
        self._domain_verify_due: float | None = None

    async def handle(self, operation_id: str, ctx: Context) -> Reply:
        handler = _REGISTRY.get(operation_id)
        if handler is None:
            raise ApiError(
                501, {"error": "Not implemented", "message": f"the fake has no handler for {operation_id}"}
            )
        return await handler(self, ctx)

    # -- shared helpers -------------------------------------------------------------------------

    def now(self) -> str:
        return self.clock.iso()

    def deleted(self, extra: JSON | None = None) -> Reply:
        if self.options.delete_status == 204:
            return 204, None
        return 200, {"success": True, **(extra or {})}

    @staticmethod
    def _int_param(ctx: Context, name: str, default: int) -> int:
        value = ctx.query.get(name, default)
        if isinstance(value, bool):
            raise validation_error(f"{name}: must be an integer")
        if isinstance(value, str):
            try:
                value = int(value, 10)
            except ValueError:
                raise validation_error(f"{name}: must be an integer") from None
        if not isinstance(value, int):
            raise validation_error(f"{name}: must be an integer")
        return value

    async def _page(self, ctx: Context, items: list[JSON], key: str) -> JSON:
        limit = self._int_param(ctx, "limit", DEFAULT_LIMIT)
        offset = self._int_param(ctx, "offset", 0)
        if not 1 <= limit <= MAX_LIMIT:
            raise validation_error(f"limit: must be between 1 and {MAX_LIMIT}")
        if offset < 0:
            raise validation_error("offset: must be >= 0")
        if self.options.page_delay > 0:
            await self.fake.sleep(self.options.page_delay)
        return {
            key: items[offset : offset + limit],
            "pagination": {"total": len(items), "limit": limit, "offset": offset},
        }

    @staticmethod
    def _date_param(ctx: Context, name: str) -> datetime | None:
        value = ctx.query.get(name)
        if value is None:
            return None
        try:
            return parse_timestamp(str(value))
        except ValueError:
            raise validation_error(f"{name}: must be an ISO 8601 date-time") from None

    def _in_period(self, ctx: Context, items: list[JSON]) -> list[JSON]:
        start = self._date_param(ctx, "start_date")
        end = self._date_param(ctx, "end_date")
        if start is None and end is None:
            return items
        chosen = []
        for item in items:
            created = parse_timestamp(item["created_at"])
            if (start is None or created >= start) and (end is None or created <= end):
                chosen.append(item)
        return chosen

    def _default_phone(self) -> JSON | None:
        return next((n for n in self.state.numbers.values() if n.get("is_active", True) is not False), None)

    def _credits_left(self) -> bool:
        balance = self.state.organization.get("minutes_balance", 0)
        return isinstance(balance, (int, float)) and balance > 0

    def _insufficient_credits(self) -> ApiError:
        balance = self.state.organization.get("minutes_balance", 0)
        return ApiError(
            402,
            {
                "error": "Insufficient credits",
                "message": "Your account has no credits remaining.",
                "balance": max(0, balance) if isinstance(balance, (int, float)) else 0,
            },
        )

    # -- agents ---------------------------------------------------------------------------------

    @staticmethod
    def _agent_defaults(agent: JSON) -> None:
        """Fill the config blocks the server always returns (a realtime agent has no TTS)."""
        if agent.get("stt_config") is None:
            agent["stt_config"] = dict(DEFAULT_STT)
        if agent.get("llm_config") is None:
            agent["llm_config"] = dict(DEFAULT_LLM)
        if "tts_config" not in agent:
            agent["tts_config"] = None if is_realtime(agent) else dict(DEFAULT_TTS)

    def _agent(self, agent_id: str) -> JSON:
        agent = self.state.agents.get(agent_id)
        if agent is None:
            raise not_found("Assistant")
        return agent

    @operation("listAgents")
    async def list_agents(self, ctx: Context) -> Reply:
        return 200, {"assistants": list(self.state.agents.values())}

    @operation("createAgent")
    async def create_agent(self, ctx: Context) -> Reply:
        now = self.now()
        agent: JSON = {"id": self.ids.uuid(), "name": ctx.data["name"], "is_active": True}
        agent.update({k: v for k, v in ctx.data.items() if k not in READ_ONLY})
        self._agent_defaults(agent)
        agent["created_at"] = agent["updated_at"] = now
        self.state.agents[agent["id"]] = agent
        return 201, {"assistant": agent}

    @operation("getAgent")
    async def get_agent(self, ctx: Context) -> Reply:
        return 200, {"assistant": self._agent(ctx.param("id", "assistant_id", "agent_id"))}

    @operation("updateAgent")
    async def update_agent(self, ctx: Context) -> Reply:
        agent = self._agent(ctx.param("id", "assistant_id", "agent_id"))
        agent.update({k: v for k, v in ctx.data.items() if k not in READ_ONLY})
        self._agent_defaults(agent)
        agent["updated_at"] = self.now()
        return 200, {"assistant": agent}

    @operation("deleteAgent")
    async def delete_agent(self, ctx: Context) -> Reply:
        agent = self._agent(ctx.param("id", "assistant_id", "agent_id"))
        del self.state.agents[agent["id"]]
        for number in self.state.numbers.values():
            if number.get("agent_id") == agent["id"]:
                number["agent_id"] = None
        return self.deleted()

    # -- tool templates -------------------------------------------------------------------------

    def _tool_template(self, template_id: str) -> JSON:
        template = self.state.tool_templates.get(template_id)
        if template is None:
            raise not_found("Tool template")
        return template

    @staticmethod
    def _check_tool(name: Any, tool_type: Any, config: Any) -> None:
        kind = _TOOL_TYPE_ALIASES.get(str(tool_type), str(tool_type))
        if kind not in KNOWN_TOOL_TYPES:
            # Responses treat tool_type as open, but a template can only be created for a
            # type the platform knows how to run.
            raise validation_error("tool_type: must be one of " + ", ".join(KNOWN_TOOL_TYPES))
        if not isinstance(config, dict):
            raise validation_error("tool_config: must be an object")
        if kind == "function":
            tool_name = config.get("name")
            if tool_name is None:
                if not (isinstance(name, str) and _TOOL_NAME.fullmatch(name)):
                    raise validation_error(
                        "tool_config.name: required when the template name is not a valid tool name "
                        "(letters, digits, _ and -, starting with a letter or _, at most 64 characters)"
                    )
            elif not (isinstance(tool_name, str) and _TOOL_NAME.fullmatch(tool_name)):
                raise validation_error(
                    "tool_config.name: must start with a letter or _ and contain only letters, digits, _ and - "
                    "(at most 64 characters)"
                )
        elif kind == "transfer_call":
            destinations = config.get("destinations")
            if not isinstance(destinations, list) or not destinations:
                raise validation_error("tool_config.destinations: at least one destination is required")

    @operation("listToolTemplates")
    async def list_tool_templates(self, ctx: Context) -> Reply:
        return 200, {"tool_templates": list(self.state.tool_templates.values())}

    @operation("createToolTemplate")
    async def create_tool_template(self, ctx: Context) -> Reply:
        data = ctx.data
        self._check_tool(data.get("name"), data.get("tool_type"), data.get("tool_config"))
        now = self.now()
        template: JSON = {
            "id": self.ids.uuid(),
            "org_id": self.state.organization["id"],
            "name": data["name"],
            "description": data.get("description"),
            "tool_type": data["tool_type"],
            "tool_config": data["tool_config"],
            "created_at": now,
            "updated_at": now,
        }
        self.state.tool_templates[template["id"]] = template
        return 201, {"tool_template": template}

    @operation("getToolTemplate")
    async def get_tool_template(self, ctx: Context) -> Reply:
        return 200, {"tool_template": self._tool_template(ctx.param("id", "template_id"))}

    @operation("updateToolTemplate")
    async def update_tool_template(self, ctx: Context) -> Reply:
        template = self._tool_template(ctx.param("id", "template_id"))
        merged = {**template, **{k: v for k, v in ctx.data.items() if k not in READ_ONLY}}
        self._check_tool(merged.get("name"), merged.get("tool_type"), merged.get("tool_config"))
        template.update(merged)
        template["updated_at"] = self.now()
        return 200, {"tool_template": template}

    @operation("deleteToolTemplate")
    async def delete_tool_template(self, ctx: Context) -> Reply:
        template = self._tool_template(ctx.param("id", "template_id"))
        del self.state.tool_templates[template["id"]]
        return self.deleted()

    # -- numbers --------------------------------------------------------------------------------

    def _number(self, number_id: str) -> JSON:
        number = self.state.numbers.get(number_id)
        if number is None:
            raise not_found("Number")
        return self._render_number(number)

    def _render_number(self, number: JSON) -> JSON:
        """Refresh the denormalized names (agent, business, trunk) from the current state."""
        agent = self.state.agents.get(number.get("agent_id") or "")
        trunk = self.state.sip_trunks.get(number.get("transfer_trunk_id") or "")
        number["agent_name"] = agent["name"] if agent else None
        number["business_name"] = agent.get("business_name") if agent else None
        number["transfer_trunk_name"] = trunk["name"] if trunk else None
        return number

    def _check_number_refs(self, data: JSON) -> None:
        if data.get("agent_id") is not None and data["agent_id"] not in self.state.agents:
            raise not_found("Assistant")
        if (
            data.get("transfer_trunk_id") is not None
            and data["transfer_trunk_id"] not in self.state.sip_trunks
        ):
            raise not_found("SIP trunk")

    @operation("listNumbers")
    async def list_numbers(self, ctx: Context) -> Reply:
        return 200, {"numbers": [self._render_number(n) for n in self.state.numbers.values()]}

    @operation("createNumber")
    async def create_number(self, ctx: Context) -> Reply:
        data = ctx.data
        phone = data.get("phone_number")
        if not is_e164(phone):
            raise validation_error("phone_number: must be in E.164 format (e.g. +31850835037)")
        if any(n["phone_number"] == phone for n in self.state.numbers.values()):
            raise conflict(f"Number {phone} is already registered")
        self._check_number_refs(data)
        now = self.now()
        number: JSON = {
            "id": self.ids.uuid(),
            "phone_number": phone,
            "agent_id": data.get("agent_id"),
            "transfer_trunk_id": data.get("transfer_trunk_id"),
            "workflow_id": data.get("workflow_id"),
            "workflow_name": None,
            "source": None,
            "is_active": data.get("is_active", True),
        }
        if "name" in data:
            number["name"] = data["name"]
        number.update({k: v for k, v in data.items() if k not in READ_ONLY and k not in number})
        number["created_at"] = number["updated_at"] = now
        self.state.numbers[number["id"]] = number
        return 201, {"number": self._render_number(number)}

    @operation("getNumber")
    async def get_number(self, ctx: Context) -> Reply:
        return 200, {"number": self._number(ctx.param("id", "number_id"))}

    @operation("updateNumber")
    async def update_number(self, ctx: Context) -> Reply:
        number = self._number(ctx.param("id", "number_id"))
        self._check_number_refs(ctx.data)
        number.update({k: v for k, v in ctx.data.items() if k not in READ_ONLY and k != "phone_number"})
        number["updated_at"] = self.now()
        return 200, {"number": self._render_number(number)}

    @operation("deleteNumber")
    async def delete_number(self, ctx: Context) -> Reply:
        number = self._number(ctx.param("id", "number_id"))
        del self.state.numbers[number["id"]]
        return self.deleted()

    # -- calls ----------------------------------------------------------------------------------

    @operation("listCalls")
    async def list_calls(self, ctx: Context) -> Reply:
        calls = list(reversed(self.state.calls.values()))  # newest first
        calls.sort(key=lambda c: c["created_at"], reverse=True)
        status = ctx.query.get("status")
        if isinstance(status, str) and status:
            calls = [c for c in calls if c.get("status") == status]
        calls = self._in_period(ctx, calls)
        return 200, await self._page(ctx, calls, "calls")

    @operation("getCall")
    async def get_call(self, ctx: Context) -> Reply:
        call = self.state.calls.get(ctx.param("id", "call_id"))
        if call is None:
            raise not_found("Call")
        return 200, call

    @operation("createOutboundCall")
    async def create_outbound_call(self, ctx: Context) -> Reply:
        data = ctx.data
        destination = data.get("destination")
        if not is_e164(destination):
            raise validation_error("destination: must be in E.164 format (e.g. +31612345678)")
        assistant_id = data.get("assistant_id", data.get("agent_id"))
        transient = data.get("assistant", data.get("agent"))
        override = data.get("assistant_override", data.get("agent_config"))
        if assistant_id is not None and transient is not None:
            raise validation_error("assistant: give either assistant_id or assistant, not both")
        if assistant_id is None and transient is None:
            raise validation_error("assistant_id: required (or give a transient assistant)")
        if override is not None and transient is not None:
            raise validation_error("assistant_override: only allowed together with assistant_id")
        agent: JSON | None = None
        if assistant_id is not None:
            agent = self.state.agents.get(str(assistant_id))
            if agent is None:
                raise not_found("Assistant")
            if agent.get("is_active") is False:
                raise bad_request("Assistant inactive", "The assistant is not active")
            config = {**agent, **(override if isinstance(override, dict) else {})}
        else:
            config = dict(transient) if isinstance(transient, dict) else {}
            if not isinstance(config.get("llm_config"), dict):
                raise validation_error("assistant.llm_config: required field is missing")
            if not is_realtime(config):
                for block in ("stt_config", "tts_config"):
                    if not isinstance(config.get(block), dict):
                        raise validation_error(
                            f"assistant.{block}: required for pipeline (non-realtime) LLM providers"
                        )
        if isinstance(data.get("first_message"), str):
            config["first_message"] = data["first_message"]
        phone: JSON | None
        if data.get("number_id") is not None:
            phone = self.state.numbers.get(str(data["number_id"]))
            if phone is None:
                raise not_found("Number")
        else:
            phone = self._default_phone()
        if not self._credits_left():
            raise self._insufficient_credits()
        context = data.get("context")
        call = self.sim.start_call(
            destination=str(destination),
            config=config,
            agent=agent,
            phone=phone,
            system_message=context if isinstance(context, str) and context else None,
        )
        return 200, {
            "success": True,
            "call_id": call.record["id"],
            "status": "dialing",
            "room_name": call.record["room_name"],
        }

    @operation("controlCall")
    async def control_call(self, ctx: Context) -> Reply:
        call_id = ctx.param("id", "call_id")
        if call_id not in self.state.calls:
            raise not_found("Call")
        status, body, headers = self.sim.control(call_id, ctx.data)
        if status >= 400:
            raise ApiError(status, body, headers)
        return status, body, headers

    # -- usage ----------------------------------------------------------------------------------

    @operation("getUsage")
    async def get_usage(self, ctx: Context) -> Reply:
        logs = sorted(self.state.usage_logs, key=lambda log: log["created_at"], reverse=True)
        logs = self._in_period(ctx, logs)
        body = await self._page(ctx, logs, "logs")
        seconds = sum(int(log.get("duration_sec", 0)) for log in logs)
        body["summary"] = {
            "total_calls": len(logs),
            "total_duration_seconds": seconds,
            "total_duration_minutes": minutes(seconds),
        }
        return 200, body

    # -- SIP trunks -----------------------------------------------------------------------------

    def _trunk(self, trunk_id: str) -> JSON:
        trunk = self.state.sip_trunks.get(trunk_id)
        if trunk is None:
            raise not_found("SIP trunk")
        return trunk

    @operation("listSipTrunks")
    async def list_sip_trunks(self, ctx: Context) -> Reply:
        return 200, {"trunks": list(self.state.sip_trunks.values())}

    @operation("createSipTrunk")
    async def create_sip_trunk(self, ctx: Context) -> Reply:
        data = ctx.data
        now = self.now()
        trunk: JSON = {
            "id": self.ids.uuid(),
            "org_id": self.state.organization["id"],
            "name": data["name"],
            "provider": data.get("provider"),
            "address": data["address"],
            "transport": data.get("transport") or "udp",
            "auth_username": data.get("auth_username"),
            "is_active": True,
            "created_at": now,
            "updated_at": now,
        }
        # auth_password is write-only: accepted, never stored or returned.
        self.state.sip_trunks[trunk["id"]] = trunk
        return 201, {"trunk": trunk}

    @operation("getSipTrunk")
    async def get_sip_trunk(self, ctx: Context) -> Reply:
        return 200, {"trunk": self._trunk(ctx.param("id", "trunk_id"))}

    @operation("deleteSipTrunk")
    async def delete_sip_trunk(self, ctx: Context) -> Reply:
        trunk = self._trunk(ctx.param("id", "trunk_id"))
        del self.state.sip_trunks[trunk["id"]]
        for number in self.state.numbers.values():
            if number.get("transfer_trunk_id") == trunk["id"]:
                number["transfer_trunk_id"] = None
        return self.deleted()

    # -- voices ---------------------------------------------------------------------------------

    @operation("listVoices")
    async def list_voices(self, ctx: Context) -> Reply:
        return 200, {"voices": self.state.voices}

    # -- BYOK -----------------------------------------------------------------------------------

    def _byok_keys(self) -> JSON:
        keys: JSON = {f"{p}_secret_id": None for p in BYOK_PROVIDERS}
        keys.update({f"{p}_secret_id": secret for p, secret in self.state.byok_keys.items()})
        return keys

    @operation("getByokKeys")
    async def get_byok_keys(self, ctx: Context) -> Reply:
        return 200, {"byok_keys": self._byok_keys()}

    @operation("upsertByokKey")
    async def upsert_byok_key(self, ctx: Context) -> Reply:
        provider = ctx.data.get("provider")
        if provider not in BYOK_PROVIDERS:
            raise validation_error("provider: unknown provider (known: " + ", ".join(BYOK_PROVIDERS) + ")")
        if not isinstance(ctx.data.get("api_key"), str) or not ctx.data["api_key"].strip():
            raise validation_error("api_key: must not be empty")
        self.state.byok_keys[str(provider)] = f"vault-secret-{self.ids.token(12)}"
        return 200, {"success": True, "byok_keys": self._byok_keys()}

    @operation("deleteByokKey")
    async def delete_byok_key(self, ctx: Context) -> Reply:
        provider = ctx.data.get("provider")
        if provider not in self.state.byok_keys:
            raise not_found(f"BYOK key for provider {provider!r}")
        del self.state.byok_keys[str(provider)]
        return self.deleted({"byok_keys": self._byok_keys()})

    @operation("listByokProviders")
    async def list_byok_providers(self, ctx: Context) -> Reply:
        return 200, {"providers": self.state.byok_catalog}

    # -- domains --------------------------------------------------------------------------------

    def _require_resend(self) -> None:
        if self.options.require_resend_key and "resend" not in self.state.byok_keys:
            raise bad_request(
                "Resend key required", "Add a Resend API key with POST /byok before using domains"
            )

    def _current_domain(self) -> JSON | None:
        """The domain, with a pending verification completed once its (simulated) time passed."""
        domain = self.state.domain
        due = self._domain_verify_due
        if (
            domain is not None
            and domain.get("status") == "pending"
            and due is not None
            and self.clock.now() >= due
        ):
            now = self.now()
            domain.update(status="verified", verified_at=now, updated_at=now)
            for record in domain.get("records") or []:
                record["status"] = "verified"
            for entry in self.state.resend_domains:
                if entry["id"] == domain.get("resend_domain_id"):
                    entry["status"] = "verified"
            self._domain_verify_due = None
        return domain

    def _domain(self) -> JSON:
        domain = self._current_domain()
        if domain is None:
            raise not_found("Domain")
        return domain

    def _dns_records(self, name: str, status: str) -> list[JSON]:
        return [
            {
                "record": "SPF",
                "name": "send",
                "type": "MX",
                "ttl": "Auto",
                "status": status,
                "value": "feedback-smtp.eu-west-1.amazonses.com",
                "priority": 10,
            },
            {
                "record": "SPF",
                "name": "send",
                "type": "TXT",
                "ttl": "Auto",
                "status": status,
                "value": "v=spf1 include:amazonses.com ~all",
            },
            {
                "record": "DKIM",
                "name": "resend._domainkey",
                "type": "TXT",
                "ttl": "Auto",
                "status": status,
                "value": "p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC" + self.ids.token(24),
            },
        ]

    def _new_domain(self, name: str, resend_id: str, status: str) -> JSON:
        now = self.now()
        return {
            "id": self.ids.uuid(),
            "org_id": self.state.organization["id"],
            "domain_name": name,
            "resend_domain_id": resend_id,
            "status": status,
            "region": "eu-west-1",
            "records": self._dns_records(name, "verified" if status == "verified" else "not_started"),
            "created_at": now,
            "updated_at": now,
            "verified_at": now if status == "verified" else None,
        }

    @operation("getDomain")
    async def get_domain(self, ctx: Context) -> Reply:
        return 200, {"domain": self._current_domain()}

    @operation("createDomain")
    async def create_domain(self, ctx: Context) -> Reply:
        self._require_resend()
        name = str(ctx.data.get("domain_name", "")).strip().lower()
        if not _DOMAIN_NAME.fullmatch(name):
            raise validation_error(
                "domain_name: must be a fully qualified domain name (e.g. mail.example.com)"
            )
        if self.state.domain is not None:
            raise conflict("A domain is already configured; delete it first")
        resend_id = self.ids.uuid()
        self.state.resend_domains.append(
            {"id": resend_id, "name": name, "status": "not_started", "region": "eu-west-1"}
        )
        self.state.domain = self._new_domain(name, resend_id, "not_started")
        return 201, {"domain": self.state.domain}

    @operation("deleteDomain")
    async def delete_domain(self, ctx: Context) -> Reply:
        self._domain()
        self.state.domain = None
        self._domain_verify_due = None
        return self.deleted()

    @operation("listResendDomains")
    async def list_resend_domains(self, ctx: Context) -> Reply:
        self._require_resend()
        domain = self._current_domain()
        return 200, {
            "domains": self.state.resend_domains,
            "selected_domain_id": domain.get("resend_domain_id") if domain else None,
        }

    @operation("syncResendDomain")
    async def sync_resend_domain(self, ctx: Context) -> Reply:
        self._require_resend()
        resend_id = ctx.data.get("resendDomainId")
        entry = next((d for d in self.state.resend_domains if d["id"] == resend_id), None)
        if entry is None:
            raise not_found("Resend domain")
        self.state.domain = self._new_domain(entry["name"], entry["id"], entry.get("status") or "not_started")
        self._domain_verify_due = None
        return 200, {"domain": self.state.domain, "message": f"Domain {entry['name']} synced from Resend"}

    @operation("verifyDomain")
    async def verify_domain(self, ctx: Context) -> Reply:
        domain = self._domain()
        if domain.get("status") != "verified":
            domain["status"] = "pending"
            domain["updated_at"] = self.now()
            for record in domain.get("records") or []:
                record["status"] = "pending"
            self._domain_verify_due = self.clock.now() + self.options.domain_verify_seconds
        return 200, {"domain": domain}

    @operation("refreshDomain")
    async def refresh_domain(self, ctx: Context) -> Reply:
        return 200, {"domain": self._domain()}

    # -- analysis templates ---------------------------------------------------------------------

    def _analysis_template(self, template_id: str) -> JSON:
        template = self.state.analysis_templates.get(template_id)
        if template is None:
            raise not_found("Analysis template")
        return template

    @operation("listAnalysisTemplates")
    async def list_analysis_templates(self, ctx: Context) -> Reply:
        return 200, {"analysis_templates": list(self.state.analysis_templates.values())}

    @operation("createAnalysisTemplate")
    async def create_analysis_template(self, ctx: Context) -> Reply:
        data = ctx.data
        now = self.now()
        template: JSON = {
            "id": self.ids.uuid(),
            "org_id": self.state.organization["id"],
            "name": data["name"],
            "description": data.get("description"),
            "system_prompt": data["system_prompt"],
            "user_prompt": data["user_prompt"],
            "schema": data["schema"],
            "created_at": now,
            "updated_at": now,
        }
        self.state.analysis_templates[template["id"]] = template
        return 201, {"analysis_template": template}

    @operation("getAnalysisTemplate")
    async def get_analysis_template(self, ctx: Context) -> Reply:
        return 200, {"analysis_template": self._analysis_template(ctx.param("id", "template_id"))}

    @operation("updateAnalysisTemplate")
    async def update_analysis_template(self, ctx: Context) -> Reply:
        template = self._analysis_template(ctx.param("id", "template_id"))
        template.update({k: v for k, v in ctx.data.items() if k not in READ_ONLY})
        template["updated_at"] = self.now()
        return 200, {"analysis_template": template}

    @operation("deleteAnalysisTemplate")
    async def delete_analysis_template(self, ctx: Context) -> Reply:
        template = self._analysis_template(ctx.param("id", "template_id"))
        del self.state.analysis_templates[template["id"]]
        return self.deleted()

    # -- organization ---------------------------------------------------------------------------

    @operation("getOrganization")
    async def get_organization(self, ctx: Context) -> Reply:
        org = dict(self.state.organization)
        org["active_numbers"] = len(self.state.numbers)
        org["active_agents"] = len(self.state.agents)
        org["active_calls"] = sum(
            1 for c in self.state.calls.values() if c.get("status") in ACTIVE_CALL_STATUSES
        )
        if (
            ctx.query.get("include_children") is True
            or str(ctx.query.get("include_children")).lower() == "true"
        ):
            org["children"] = self.state.children
        return 200, org

    # -- campaigns and leads --------------------------------------------------------------------

    def _campaign(self, campaign_id: str) -> JSON:
        campaign = self.state.campaigns.get(campaign_id)
        if campaign is None:
            raise not_found("Campaign")
        return campaign

    @staticmethod
    def _check_schedule(data: JSON) -> None:
        for name in ("schedule_start_time", "schedule_end_time"):
            if name in data and not (isinstance(data[name], str) and _DAILY_TIME.fullmatch(data[name])):
                raise validation_error(f"{name}: must be a time of day as HH:MM:SS")
        tz = data.get("timezone")
        if "timezone" in data:
            try:
                zoneinfo.ZoneInfo(str(tz))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                # Without a time zone database nothing can be checked; accept rather than reject.
                if zoneinfo.available_timezones():
                    raise validation_error(
                        "timezone: must be an IANA time zone name (e.g. Europe/Amsterdam)"
                    ) from None

    def _new_lead(self, campaign_id: str, data: Any, where: str) -> JSON:
        if not isinstance(data, dict):
            raise validation_error(f"{where.rstrip('.') or 'body'}: must be an object")
        phone = data.get("phone_number")
        if not is_e164(phone):
            raise validation_error(f"{where}phone_number: must be in E.164 format (e.g. +31612345678)")
        return {
            "id": self.ids.uuid(),
            "campaign_id": campaign_id,
            "phone_number": phone,
            "variables": data.get("variables") or {},
            "status": "pending",
            "call_id": None,
            "attempts": 0,
            "last_attempt_at": None,
            "created_at": self.now(),
        }

    @operation("listCampaigns")
    async def list_campaigns(self, ctx: Context) -> Reply:
        return 200, {"campaigns": list(self.state.campaigns.values())}

    @operation("createCampaign")
    async def create_campaign(self, ctx: Context) -> Reply:
        data = ctx.data
        self._check_schedule(data)
        if data.get("agent_id") not in self.state.agents:
            raise not_found("Assistant")
        now = self.now()
        campaign: JSON = {
            "id": self.ids.uuid(),
            "name": data["name"],
            "agent_id": data["agent_id"],
            "status": "draft",
            "system_message_template": data.get("system_message_template"),
            "schedule_start_time": data["schedule_start_time"],
            "schedule_end_time": data["schedule_end_time"],
            "timezone": data["timezone"],
            "total_leads": 0,
            "completed_leads": 0,
            "failed_leads": 0,
            "created_at": now,
            "updated_at": now,
        }
        leads = [
            self._new_lead(campaign["id"], lead, f"leads[{i}].")
            for i, lead in enumerate(data.get("leads") or [])
        ]
        self.state.campaigns[campaign["id"]] = campaign
        for lead in leads:
            self.state.leads[lead["id"]] = lead
        campaign["total_leads"] = len(leads)
        return 201, {"campaign": campaign}

    @operation("getCampaign")
    async def get_campaign(self, ctx: Context) -> Reply:
        return 200, {"campaign": self._campaign(ctx.param("id", "campaign_id"))}

    @operation("updateCampaign")
    async def update_campaign(self, ctx: Context) -> Reply:
        campaign = self._campaign(ctx.param("id", "campaign_id"))
        data = ctx.data
        if campaign.get("status") in FINAL_CAMPAIGN_STATUSES:
            raise bad_request("Campaign closed", f"A {campaign['status']} campaign can no longer be changed")
        status = data.get("status")
        if "status" in data and status not in SETTABLE_CAMPAIGN_STATUSES:
            raise validation_error("status: must be one of " + ", ".join(SETTABLE_CAMPAIGN_STATUSES))
        self._check_schedule(data)
        if status == "scheduled" and campaign.get("agent_id") not in self.state.agents:
            raise bad_request("Assistant not found", "The campaign's assistant no longer exists")
        allowed = (
            "name",
            "status",
            "system_message_template",
            "schedule_start_time",
            "schedule_end_time",
            "timezone",
        )
        campaign.update({k: v for k, v in data.items() if k in allowed})
        campaign["updated_at"] = self.now()
        if status == "scheduled":
            self.sim.schedule_campaign(campaign["id"], self._dial_lead)
        elif status is not None:
            self.sim.wake(campaign["id"])
        return 200, {"campaign": campaign}

    @operation("deleteCampaign")
    async def delete_campaign(self, ctx: Context) -> Reply:
        campaign = self._campaign(ctx.param("id", "campaign_id"))
        self.sim.stop_campaign(campaign["id"])
        for lead in self.state.leads_of(campaign["id"]):
            del self.state.leads[lead["id"]]
        del self.state.campaigns[campaign["id"]]
        return self.deleted()

    @operation("listCampaignLeads")
    async def list_campaign_leads(self, ctx: Context) -> Reply:
        campaign = self._campaign(ctx.param("id", "campaign_id"))
        leads = self.state.leads_of(campaign["id"])
        if not self.options.leads_pagination:
            return 200, {"leads": leads}
        return 200, await self._page(ctx, leads, "leads")

    @operation("addCampaignLead")
    async def add_campaign_lead(self, ctx: Context) -> Reply:
        campaign = self._campaign(ctx.param("id", "campaign_id"))
        if campaign.get("status") in FINAL_CAMPAIGN_STATUSES:
            raise bad_request("Campaign closed", f"Leads cannot be added to a {campaign['status']} campaign")
        lead = self._new_lead(campaign["id"], ctx.data, "")
        self.state.leads[lead["id"]] = lead
        self.sim.refresh_counters(campaign["id"])
        if campaign.get("status") == "scheduled":
            self.sim.schedule_campaign(campaign["id"], self._dial_lead)
        return 201, {"lead": lead}

    @operation("removeCampaignLead")
    async def remove_campaign_lead(self, ctx: Context) -> Reply:
        campaign = self._campaign(ctx.param("id", "campaign_id"))
        lead_id = ctx.params.get("lead_id") or ctx.params.get("leadId") or ""
        lead = self.state.leads.get(lead_id)
        if lead is None or lead["campaign_id"] != campaign["id"]:
            raise not_found("Lead")
        if lead.get("status") == "calling":
            raise conflict("The lead is being called and cannot be removed now")
        del self.state.leads[lead_id]
        self.sim.refresh_counters(campaign["id"])
        return self.deleted()

    def _dial_lead(self, campaign: JSON, lead: JSON) -> SimCall | None:
        """Place the call for one lead of a scheduled campaign (the dialer calls this)."""
        agent = self.state.agents.get(campaign.get("agent_id") or "")
        if agent is None or not self._credits_left():
            # Nothing sensible to dial with: stop the campaign the way a user would see it.
            campaign["status"] = "paused"
            campaign["updated_at"] = self.now()
            return None
        variables = lead.get("variables") or {}
        template = campaign.get("system_message_template")
        system = None
        if isinstance(template, str) and template:
            system = _PLACEHOLDER.sub(lambda m: str(variables.get(m.group(1), m.group(0))), template)
        call = self.sim.start_call(
            destination=lead["phone_number"],
            config=dict(agent),
            agent=agent,
            phone=self._default_phone(),
            lead_id=lead["id"],
            campaign_id=campaign["id"],
            system_message=system,
        )
        lead.update(
            status="calling",
            attempts=int(lead.get("attempts") or 0) + 1,
            last_attempt_at=format_timestamp(self.clock.now()),
            call_id=call.record["id"],
        )
        self.sim.refresh_counters(campaign["id"])
        return call
