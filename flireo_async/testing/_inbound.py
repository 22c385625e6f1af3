"""Inbound calls in the fake: a caller rings a registered number and the agent answers.

What happens, on the fake's simulated clock (the deadlines are the platform's, in simulated
seconds, so ``speed=20`` turns the 10 s tool deadline into half a real second):

1. The call is created ``ringing`` with an id like ``call-_+31612345678_XqaQxRRgAzYc``. With no
   credits left it ends ``rejected``; an inactive number, or one without an active agent, ends
   ``failed``.
2. If the number's agent has a webhook for ``assistant-request``, the fake sends it (signed with
   the agent's secret) and waits up to 5 s. ``{}`` keeps the saved agent; ``assistant`` is
   merged over it key by key; ``assistant_id`` switches to another saved agent; an
   ``assistant_override`` is merged over the agent chosen; ``error`` rejects the call after the
   text is spoken. A late, failed, non-2xx or unreadable reply, or one that does not match the
   spec's ``AssistantRequestResponse``, falls back to the saved agent. Older camelCase replies
   (``firstMessage``, ``analysisPlan``, ``tts_config.voiceId``, ``maxDurationSeconds``) are read.
3. One simulated second later the call is ``in-progress``. Each scripted tool call goes as a
   ``tool-calls`` webhook to the tool's own URL (``url`` or ``server.url``) or else to the
   agent's webhook, signed with the tool's ``server.secret`` or else the agent's secret; the
   fake waits up to 10 s for the reply (not at all for ``async`` tools). All four reply forms
   are read. What the model got is recorded; a late, failed or unreadable reply becomes a tool
   error, which the agent speaks like any other.
4. The call then runs to its planned duration (or until call control ends it) and ends like an
   outbound call: status updates, end-of-call report, usage log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._errors import RequestValidationError
from ._clock import format_timestamp
from ._simulation import (
    ASSISTANT_LINES,
    DURATION_SECONDS,
    USER_LINES,
    SimCall,
    Simulator,
    first_line,
    is_e164,
    webhook_target,
)
from ._state import WebhookDelivery

if TYPE_CHECKING:
    from ._validation import SpecIndex

__all__ = [
    "ASSISTANT_REQUEST_DEADLINE",
    "TOOL_CALLS_DEADLINE",
    "AssistantRequestOutcome",
    "InboundCall",
    "ToolCallOutcome",
    "parse_tool_calls",
    "start_inbound_call",
]

logger = logging.getLogger("flireo_async.testing")

JSON = dict[str, Any]

ASSISTANT_REQUEST_DEADLINE = 5.0
"""Simulated seconds the platform waits for the ``assistant-request`` reply."""
TOOL_CALLS_DEADLINE = 10.0
"""Simulated seconds the platform waits for the ``tool-calls`` reply of synchronous tools."""
ANSWER_SECONDS = 1.0
"""Simulated seconds an inbound call rings after the agent is known, before it is answered."""
TURN_SECONDS = 2.0
"""Simulated seconds of conversation before each tool call."""

_BUILT_IN_TOOL_TYPES = frozenset({"end_call", "endCall", "transfer_call", "transferCall"})
_TOOL_CALL_KEYS = frozenset({"name", "arguments"})


@dataclass
class AssistantRequestOutcome:
    """What the fake made of the ``assistant-request`` reply of an inbound call."""

    delivery: WebhookDelivery = field(repr=False)
    """The delivery, with the receiver's status and raw answer."""
    answer: str
    """How the call was set up: ``saved_agent`` (reply ``{}``), ``assistant`` (a per-call
    configuration merged over the saved agent), ``assistant_id`` (another saved agent, with its
    override if one was given), ``assistant_override`` (the saved agent with an override),
    ``rejected`` (the reply's ``error``) or ``fallback`` (the reply could not be used, see
    ``reason``; the saved agent answers)."""
    reason: str | None = None
    """For ``rejected`` the text spoken to the caller; for ``fallback`` why the reply was not used."""
    agent_id: str | None = None
    """The saved agent the call's configuration starts from."""
    reply: Any = field(default=None, repr=False)
    """The reply as parsed JSON (``None`` without a readable reply)."""


@dataclass
class ToolCallOutcome:
    """One scripted tool call of an inbound call, and what the model got back."""

    id: str
    """The tool call id sent in ``tool_call_list`` (the reply's ``toolCallId``)."""
    name: str
    arguments: dict[str, Any]
    delivery: WebhookDelivery | None = field(default=None, repr=False)
    """The ``tool-calls`` delivery that carried it; ``None`` when it could not be sent (``error``
    says why)."""
    result: Any = None
    """The result the model got: the receiver's value, which may itself be an error object such
    as ``{"error": "..."}``. ``None`` for an async tool and when the reply was unusable."""
    error: str | None = None
    """The error the model was told: the receiver's own error text, or the platform's for a
    late, failed or unreadable reply. ``None`` when the tool worked."""
    spoken: str | None = None
    """What the agent said about the tool call."""

    @property
    def ok(self) -> bool:
        """Whether the tool produced a result without an error."""
        return self.error is None


class InboundCall:
    """A simulated inbound call, from :meth:`FakeFlireo.simulate_inbound_call`.

    The attributes fill in as the call progresses: :attr:`assistant_request` once the reply
    has been handled, :attr:`tool_calls` one by one. ``await call.wait()`` returns when the call
    has ended and its notifications have been delivered.
    """

    def __init__(self, sim: Simulator, call: SimCall) -> None:
        self._sim = sim
        self._call = call
        self._task: asyncio.Task[None] | None = None
        self.assistant_request: AssistantRequestOutcome | None = None
        """``None`` when the number's agent has no webhook for ``assistant-request``."""
        self.tool_calls: list[ToolCallOutcome] = []
        """The scripted tool calls made so far, in order."""

    @property
    def id(self) -> str:
        """The call id (as in ``GET /calls/{id}`` and in the webhooks)."""
        return str(self._call.record["id"])

    @property
    def record(self) -> JSON:
        """The call as ``GET /calls/{id}`` returns it."""
        return self._call.record

    @property
    def status(self) -> str:
        """The current call status (``ringing``, ``in-progress``, ``ended``, ``rejected``, ...)."""
        return str(self._call.record["status"])

    @property
    def config(self) -> JSON:
        """The agent configuration the call runs with (after the assistant-request reply)."""
        return self._call.config

    @property
    def transcript(self) -> list[JSON]:
        """What was said so far (``record["messages"]`` once the call has ended)."""
        messages = self._call.record.get("messages")
        return list(messages) if isinstance(messages, list) else list(self._call.transcript)

    @property
    def done(self) -> bool:
        """Whether the simulation of the call is over (its webhooks may still be in flight)."""
        return self._task is None or self._task.done()

    async def wait(self, timeout: float | None = 30.0) -> InboundCall:
        """Wait until the call has ended and its webhooks have been delivered (or given up).

        Raises :class:`TimeoutError` after ``timeout`` real seconds (``None``: no limit); the
        call keeps running.
        """
        try:
            await asyncio.wait_for(self._settle(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"inbound call {self.id} still running after {timeout}s") from None
        return self

    async def _settle(self) -> None:
        if self._task is not None and not self._task.done():
            # asyncio.wait, not the task itself: a timed-out waiter must not cancel the call.
            await asyncio.wait({self._task})
        await self._sim.webhooks.settle(self.id)

    def __repr__(self) -> str:
        return f"InboundCall(id={self.id!r}, status={self.status!r}, tool_calls={len(self.tool_calls)})"


@dataclass
class _ToolCallSpec:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class _WebhookTool:
    """A webhook tool of an agent's ``llm_config.tools`` (flat or OpenAI-style)."""

    name: str
    url: str | None
    secret: str | None
    is_async: bool
    message: str | None


@dataclass
class _Script:
    batches: list[list[_ToolCallSpec]]
    user_line: str
    tool_lines: list[str] = field(default_factory=list)


# -- starting a call --------------------------------------------------------------------------------


def start_inbound_call(
    sim: Simulator,
    spec: SpecIndex,
    number_id: str,
    *,
    caller: str,
    tool_calls: Sequence[Any] = (),
    duration: float | None = None,
) -> InboundCall:
    """Check the arguments, create the ``ringing`` call and start simulating it."""
    number = sim.state.numbers.get(number_id) if isinstance(number_id, str) else None
    if number is None:
        raise RequestValidationError("number_id", f"no registered number has the id {number_id!r}")
    if not is_e164(caller):
        raise RequestValidationError("caller", "must be an E.164 phone number such as +31612345678")
    if duration is not None and (
        isinstance(duration, bool)
        or not isinstance(duration, (int, float))
        or not math.isfinite(duration)
        or duration <= 0
    ):
        raise RequestValidationError("duration", "must be a positive number of simulated seconds")
    batches = [
        [
            _ToolCallSpec(id=f"tool_{sim.ids.token(12)}", name=name, arguments=arguments)
            for name, arguments in batch
        ]
        for batch in parse_tool_calls(tool_calls)
    ]
    rng = sim.rng
    token = sim.ids.token(12)
    call_id = f"call-_{caller}_{token}"
    while call_id in sim.state.calls:
        call_id = f"call-_{caller}_{sim.ids.token(14)}"
    now = sim.clock.iso()
    agent = sim.state.agents.get(number.get("agent_id") or "")
    record: JSON = {
        "id": call_id,
        "status": "ringing",
        "direction": "inbound",
        "caller_phone": caller,
        "assistant_phone": number["phone_number"],
        "phone_number": number["phone_number"],
        "agent_id": agent["id"] if agent else None,
        "number_id": number["id"],
        "agent_name": agent["name"] if agent else None,
        "business_name": agent.get("business_name") if agent else None,
        "started_at": None,
        "ended_at": None,
        "duration_seconds": None,
        "end_reason": None,
        "error": None,
        "summary": None,
        "analysis_result": None,
        "messages": None,
        "room_name": f"inbound-{token[:6]}",
        "recording_url": None,
        "created_at": now,
        "updated_at": now,
    }
    call = SimCall(
        record=record,
        config={},
        destination=caller,
        phone=number,
        direction="inbound",
        planned_seconds=duration if duration is not None else rng.randint(*DURATION_SECONDS),
    )
    # Drawn now, so that a seeded fake says the same things whatever the timing.
    script = _Script(
        batches,
        user_line=rng.choice(USER_LINES),
        tool_lines=[rng.choice(ASSISTANT_LINES) for _ in batches],
    )
    call.closing_lines = [{"role": "user", "content": "Dank u wel, tot ziens."}]
    sim.state.calls[call_id] = record
    sim.calls[call_id] = call
    handle = InboundCall(sim, call)
    handle._task = sim.spawn(_run(sim, spec, handle, script))
    call.task = handle._task
    return handle


def parse_tool_calls(tool_calls: Any, where: str = "tool_calls") -> list[list[tuple[str, JSON]]]:
    """Check scripted tool calls; ``(name, arguments)`` per tool call, in rounds (one
    ``tool-calls`` webhook round each). Raises :class:`RequestValidationError`."""
    if isinstance(tool_calls, (str, bytes, Mapping)) or not isinstance(tool_calls, Sequence):
        raise RequestValidationError(
            where, "must be a list of tool calls ({'name': ..., 'arguments': {...}}) or of lists of them"
        )
    batches: list[list[tuple[str, JSON]]] = []
    for index, item in enumerate(tool_calls):
        here = f"{where}[{index}]"
        if isinstance(item, Mapping):
            batches.append([_parse_tool_call(item, here)])
        elif isinstance(item, Sequence) and not isinstance(item, (str, bytes)) and item:
            batches.append([_parse_tool_call(one, f"{here}[{j}]") for j, one in enumerate(item)])
        else:
            raise RequestValidationError(
                here, "must be a tool call ({'name': ..., 'arguments': {...}}) or a non-empty list of them"
            )
    return batches


def _parse_tool_call(item: Any, where: str) -> tuple[str, JSON]:
    if not isinstance(item, Mapping):
        raise RequestValidationError(where, "must be a mapping with 'name' and optional 'arguments'")
    unknown = sorted(str(k) for k in item if k not in _TOOL_CALL_KEYS)
    if unknown:
        raise RequestValidationError(f"{where}.{unknown[0]}", "unknown key (allowed: name, arguments)")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise RequestValidationError(f"{where}.name", "must be a non-empty string")
    arguments = item.get("arguments", {})
    if not isinstance(arguments, Mapping):
        raise RequestValidationError(f"{where}.arguments", "must be a mapping (a JSON object)")
    try:
        # Round-trip: the receiver gets exactly this JSON, and a bad value fails here, not
        # later inside the simulation.
        parsed = json.loads(json.dumps(dict(arguments), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise RequestValidationError(f"{where}.arguments", f"must be JSON-serialisable ({exc})") from None
    return name, parsed


# -- running it -------------------------------------------------------------------------------------


async def _run(sim: Simulator, spec: SpecIndex, handle: InboundCall, script: _Script) -> None:
    call = handle._call
    record = call.record
    number = call.phone or {}
    agent = sim.state.agents.get(record.get("agent_id") or "")
    call.config = dict(agent) if agent else {}
    balance = sim.state.organization.get("minutes_balance", 0)
    if not (isinstance(balance, (int, float)) and balance > 0):
        _refuse(sim, call, "rejected", "insufficient_credits", "Insufficient credits")
        return
    if number.get("is_active") is False:
        _refuse(sim, call, "failed", "number_inactive", "The number is not active")
        return
    if agent is None:
        _refuse(sim, call, "failed", "no_agent", "No agent is assigned to this number")
        return
    if agent.get("is_active") is False:
        _refuse(sim, call, "failed", "agent_inactive", "The agent of this number is not active")
        return

    target = webhook_target(agent, "assistant-request")
    if target is not None:
        url, secret = target
        delivery = await sim.webhooks.request(
            record["id"],
            url,
            secret,
            "assistant-request",
            sim.message(call, "assistant-request", {}),
            deadline=ASSISTANT_REQUEST_DEADLINE,
        )
        outcome, config, chosen = _use_assistant_reply(delivery, agent, sim.state.agents, spec)
        handle.assistant_request = outcome
        if outcome.answer == "fallback":
            logger.warning(
                "assistant-request for %s: %s; the saved agent takes the call", record["id"], outcome.reason
            )
        if outcome.answer == "rejected":
            _refuse(
                sim,
                call,
                "rejected",
                "assistant_request_error",
                outcome.reason or "Rejected by the assistant-request webhook",
                spoken=outcome.reason,
            )
            return
        call.config = config
        record.update(
            agent_id=chosen["id"], agent_name=chosen["name"], business_name=config.get("business_name")
        )

    if await _pause(sim, call, ANSWER_SECONDS):
        return  # unreachable in practice: call control refuses calls that are not in progress
    call.started_sim = sim.clock.now()
    now = format_timestamp(call.started_sim)
    record.update(status="in-progress", started_at=now, updated_at=now)
    sim.status_update(call)
    call.transcript.append({"role": "assistant", "content": first_line(call.config, inbound=True)})
    call.transcript.append({"role": "user", "content": script.user_line})
    for batch, filler in zip(script.batches, script.tool_lines, strict=True):
        if await _pause(sim, call, TURN_SECONDS):
            break
        call.transcript.append({"role": "assistant", "content": filler})
        handle.tool_calls.extend(await _call_tools(sim, call, batch))
    await sim.talk_until_end(call)


async def _pause(sim: Simulator, call: SimCall, sim_seconds: float) -> bool:
    """Wait ``sim_seconds``; whether an end of the call was requested meanwhile."""
    if not call.end_request.is_set():
        try:
            await asyncio.wait_for(call.end_request.wait(), timeout=sim.clock.real_seconds(sim_seconds))
        except asyncio.TimeoutError:
            pass
    return call.end_request.is_set()


def _refuse(
    sim: Simulator, call: SimCall, status: str, reason: str, error: str, *, spoken: str | None = None
) -> None:
    """End a call that was never answered (a rejection may still say something first)."""
    now = sim.clock.iso()
    messages = [{"role": "assistant", "content": spoken}] if spoken else []
    call.record.update(
        status=status,
        end_reason=reason,
        error=error,
        ended_at=now,
        updated_at=now,
        duration_seconds=0,
        messages=messages,
        summary=f"Inbound call from {call.destination} was not answered: {error}.",
    )
    sim.status_update(call, extra={"end_reason": reason, "error": error})


# -- the assistant-request reply ---------------------------------------------------------------------


def _use_assistant_reply(
    delivery: WebhookDelivery, saved: JSON, agents: Mapping[str, JSON], spec: SpecIndex
) -> tuple[AssistantRequestOutcome, JSON, JSON]:
    """How the call is set up after the reply: the outcome, the configuration and the agent."""
    reply: Any = None

    def fallback(reason: str) -> tuple[AssistantRequestOutcome, JSON, JSON]:
        outcome = AssistantRequestOutcome(delivery, "fallback", reason, agent_id=saved["id"], reply=reply)
        return outcome, dict(saved), saved

    problem = _delivery_problem(delivery, ASSISTANT_REQUEST_DEADLINE)
    if problem is not None:
        return fallback(problem)
    try:
        reply = _strict_json(delivery.response or b"")
    except (ValueError, RecursionError):
        return fallback("the reply is not JSON")
    if not isinstance(reply, dict):
        return fallback("the reply is not a JSON object")
    modern = _modernize_reply(reply)
    problems = spec.validate_schema("AssistantRequestResponse", modern, root="reply")
    if problems:
        return fallback("the reply does not fit AssistantRequestResponse: " + "; ".join(problems))
    if "error" in modern:
        text = str(modern["error"])
        return (
            AssistantRequestOutcome(delivery, "rejected", text, agent_id=saved["id"], reply=reply),
            {},
            saved,
        )
    answer, chosen = "saved_agent", saved
    assistant_id = modern.get("assistant_id")
    if assistant_id is not None:
        found = agents.get(assistant_id)
        if found is None:
            return fallback(f"no saved agent has the assistant_id {assistant_id!r}")
        if found.get("is_active") is False:
            return fallback(f"the agent {assistant_id!r} is not active")
        answer, chosen = "assistant_id", found
    config = dict(chosen)
    if "assistant" in modern:
        config.update(modern["assistant"])
        if answer == "saved_agent":
            answer = "assistant"
    if "assistant_override" in modern:
        config.update(modern["assistant_override"])
        if answer == "saved_agent":
            answer = "assistant_override"
    return AssistantRequestOutcome(delivery, answer, agent_id=chosen["id"], reply=reply), config, chosen


_OLD_ASSISTANT_KEYS = {
    "firstMessage": "first_message",
    "maxDurationSeconds": "max_duration_seconds",
    "analysisPlan": "analysis_plan",
}
_OLD_PLAN_KEYS = {
    "structuredDataPlan": "structured_data_plan",
    "minMessagesThreshold": "min_messages_threshold",
}


def _renamed(block: Mapping[str, Any], renames: Mapping[str, str]) -> JSON:
    """``block`` with older key spellings renamed; the current spelling wins when both appear."""
    out = dict(block)
    for old, new in renames.items():
        if old in out:
            value = out.pop(old)
            out.setdefault(new, value)
    return out


def _modernize_reply(reply: JSON) -> JSON:
    """An assistant-request reply with the older camelCase forms in their current spelling."""
    out = dict(reply)
    if "maxDurationSeconds" in out:
        value = out.pop("maxDurationSeconds")
        assistant = out.get("assistant")
        merged = dict(assistant) if isinstance(assistant, dict) else {}
        merged.setdefault("max_duration_seconds", value)
        out["assistant"] = merged
    for key in ("assistant", "assistant_override"):
        block = out.get(key)
        if not isinstance(block, dict):
            continue
        block = _renamed(block, _OLD_ASSISTANT_KEYS)
        if isinstance(block.get("analysis_plan"), dict):
            block["analysis_plan"] = _renamed(block["analysis_plan"], _OLD_PLAN_KEYS)
        if isinstance(block.get("tts_config"), dict):
            block["tts_config"] = _renamed(block["tts_config"], {"voiceId": "voice_id"})
        out[key] = block
    return out


# -- tool calls ---------------------------------------------------------------------------------------


def _webhook_tool(config: JSON, name: str) -> _WebhookTool | None:
    """The webhook tool ``name`` of a configuration's ``llm_config.tools``, if there is one."""
    llm = config.get("llm_config")
    tools = llm.get("tools") if isinstance(llm, dict) else None
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, dict) or tool.get("type") in _BUILT_IN_TOOL_TYPES:
            continue
        nested = tool.get("function") if tool.get("type") == "function" else None
        tool_name = nested.get("name") if isinstance(nested, dict) else tool.get("name")
        if tool_name != name:
            continue
        server: JSON = tool["server"] if isinstance(tool.get("server"), dict) else {}
        url = tool.get("url") if isinstance(tool.get("url"), str) and tool.get("url") else server.get("url")
        secret = server.get("secret")
        message = next(
            (tool[k] for k in ("message", "async_response", "asyncResponse") if isinstance(tool.get(k), str)),
            None,
        )
        return _WebhookTool(
            name=name,
            url=url if isinstance(url, str) and url else None,
            secret=secret if isinstance(secret, str) and secret else None,
            is_async=tool.get("async") is True,
            message=message,
        )
    return None


async def _call_tools(sim: Simulator, call: SimCall, batch: list[_ToolCallSpec]) -> list[ToolCallOutcome]:
    """One round of tool calls: one delivery per destination, all sent at once."""
    outcomes = [ToolCallOutcome(id=s.id, name=s.name, arguments=s.arguments) for s in batch]
    tools: list[_WebhookTool | None] = []
    groups: dict[tuple[str, str | None, bool], list[int]] = {}
    for index, outcome in enumerate(outcomes):
        tool = _webhook_tool(call.config, outcome.name)
        tools.append(tool)
        if tool is None:
            outcome.error = f"The agent has no webhook tool named '{outcome.name}'."
            logger.warning("inbound call %s: %s", call.record["id"], outcome.error)
            continue
        if tool.url is not None:
            agent_secret = call.config.get("webhook_secret")
            target: tuple[str, str | None] | None = (
                tool.url,
                tool.secret or (agent_secret if isinstance(agent_secret, str) and agent_secret else None),
            )
        else:
            target = webhook_target(call.config, "tool-calls")
            if target is not None and tool.secret is not None:
                target = (target[0], tool.secret)
        if target is None:
            outcome.error = f"The tool '{outcome.name}' has no webhook to call."
            logger.warning("inbound call %s: %s", call.record["id"], outcome.error)
            continue
        groups.setdefault((target[0], target[1], tool.is_async), []).append(index)
        if tool.message:
            # Spoken while a synchronous tool runs; for an async tool, instead of a result.
            call.transcript.append({"role": "assistant", "content": tool.message})

    async def deliver(url: str, secret: str | None, is_async: bool, indexes: list[int]) -> None:
        members = [outcomes[i] for i in indexes]
        message = sim.message(
            call,
            "tool-calls",
            {
                "tool_call_list": [
                    {"id": o.id, "type": "function", "function": {"name": o.name, "arguments": o.arguments}}
                    for o in members
                ]
            },
        )
        delivery = await sim.webhooks.request(
            call.record["id"],
            url,
            secret,
            "tool-calls",
            message,
            deadline=TOOL_CALLS_DEADLINE,
            wait=not is_async,
        )
        for outcome in members:
            outcome.delivery = delivery
        if not is_async:
            for outcome, (result, error) in zip(members, _read_tool_reply(delivery, members), strict=True):
                outcome.result, outcome.error = result, error

    await asyncio.gather(*(deliver(url, secret, a, indexes) for (url, secret, a), indexes in groups.items()))
    for outcome, tool in zip(outcomes, tools, strict=True):
        if tool is not None and tool.is_async and outcome.error is None:
            outcome.spoken = tool.message
            continue
        if outcome.error is not None:
            outcome.spoken = f"Excuses, dat lukte niet: {outcome.error}"
            logger.info("inbound call %s: tool %s failed: %s", call.record["id"], outcome.name, outcome.error)
        else:
            outcome.spoken = f"Ik heb het nagekeken: {_brief(outcome.result)}"
        call.transcript.append({"role": "assistant", "content": outcome.spoken})
    return outcomes


def _read_tool_reply(
    delivery: WebhookDelivery, members: list[ToolCallOutcome]
) -> list[tuple[Any, str | None]]:
    """(result, error) per tool call, from a reply in any of the four documented forms."""

    def each(text: str) -> list[tuple[Any, str | None]]:
        return [(None, text.format(name=o.name)) for o in members]

    if delivery.timed_out:
        return each(f"The tool '{{name}}' did not answer within {TOOL_CALLS_DEADLINE:g} seconds.")
    if delivery.status is None:
        return each("The tool '{name}' could not be reached.")
    if not 200 <= delivery.status < 300:
        return each(f"The tool '{{name}}' failed (HTTP {delivery.status}).")
    unreadable = "The tool '{name}' gave an unreadable answer."
    try:
        reply = _strict_json(delivery.response or b"")
    except (ValueError, RecursionError):
        return each(unreadable)
    if not isinstance(reply, dict):
        return each(unreadable)
    if "results" in reply:
        entries = reply["results"]
        if not isinstance(entries, list):
            return each(unreadable)
        by_id: dict[str, Any] = {}
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("toolCallId"), str):
                by_id.setdefault(entry["toolCallId"], entry)
        out: list[tuple[Any, str | None]] = []
        for outcome in members:
            entry = by_id.get(outcome.id)
            if entry is not None and "result" in entry:
                out.append((entry["result"], _error_in(entry["result"])))
            elif entry is not None and isinstance(entry.get("error"), str):
                out.append((None, entry["error"]))
            else:
                out.append((None, f"The tool '{outcome.name}' gave no result."))
        return out
    if "error" in reply:
        error = reply["error"]
        return each(unreadable) if not isinstance(error, str) else [(None, error) for _ in members]
    if "result" in reply:
        return [(reply["result"], _error_in(reply["result"])) for _ in members]
    return [(reply, None) for _ in members]  # the direct form: the object is the result


def _error_in(result: Any) -> str | None:
    """The text of an error-shaped result (``{"error": "..."}``), which the model speaks as a failure."""
    if isinstance(result, dict) and set(result) == {"error"} and isinstance(result["error"], str):
        return str(result["error"])
    return None


def _delivery_problem(delivery: WebhookDelivery, deadline: float) -> str | None:
    if delivery.timed_out:
        return f"no answer within {deadline:g} seconds"
    if delivery.status is None:
        return f"the webhook could not be reached ({delivery.error})"
    if not 200 <= delivery.status < 300:
        return f"the receiver answered HTTP {delivery.status}"
    return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _strict_json(body: bytes) -> Any:
    """Parse a receiver's answer as strict JSON (UTF-8, no NaN or Infinity)."""
    return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)


def _brief(result: Any, limit: int = 200) -> str:
    text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"
