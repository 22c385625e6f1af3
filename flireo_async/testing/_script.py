"""Scripted inbound calls for the fake-server process (``--inbound-script FILE``).

The script is a JSON array; each item rings one number::

    [
      {"number": "+31850835037", "caller": "+31612345678",
       "tool_calls": [{"name": "lookup_customer", "arguments": {"phone": "+31612345678"}}],
       "duration": 60, "delay": 5}
    ]

``number`` is the E.164 number (or the number id) as registered through the API, ``caller``
the E.164 number calling, ``tool_calls`` as for :meth:`FakeFlireo.simulate_inbound_call`,
``duration`` the simulated length of the conversation and ``delay`` the simulated seconds to
wait before ringing. Calls run one after the other, in order. Since the process starts empty,
each call waits until its number is registered with an agent (so a setup script can create the
agent and the number after the server started), then rings; a line is printed when it starts
and when it has ended.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from .._errors import RequestValidationError
from ._inbound import InboundCall, parse_tool_calls
from ._simulation import is_e164

if TYPE_CHECKING:
    from ._server import FakeFlireo

__all__ = ["ScriptedCall", "load_inbound_script", "parse_inbound_script", "run_inbound_script"]

JSON = dict[str, Any]

_KEYS = ("number", "caller", "tool_calls", "duration", "delay")
_POLL_SECONDS = 0.05
"""Real seconds between two looks for a number that is not registered yet."""


@dataclass(frozen=True)
class ScriptedCall:
    """One inbound call of a script."""

    number: str
    """The E.164 number or the number id to ring."""
    caller: str
    tool_calls: tuple[tuple[tuple[str, JSON], ...], ...] = ()
    """Rounds of ``(name, arguments)``, one ``tool-calls`` webhook round each."""
    duration: float | None = None
    delay: float = 0.0


def load_inbound_script(path: str | os.PathLike[str]) -> list[ScriptedCall]:
    """Read and check a script file. Raises :class:`~flireo_async.RequestValidationError` naming
    the item and field at fault, or :class:`OSError` when the file cannot be read."""
    name = f"inbound script {os.fspath(path)}"
    with open(path, encoding="utf-8") as stream:
        text = stream.read()
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        raise RequestValidationError(name, f"not valid JSON ({exc})") from None
    try:
        return parse_inbound_script(data)
    except RequestValidationError as exc:
        raise RequestValidationError(f"{name} {exc.field}".rstrip(), exc.problem) from None


def parse_inbound_script(data: Any) -> list[ScriptedCall]:
    """Check a script already parsed from JSON (see the module docstring for its shape)."""
    if not isinstance(data, list):
        raise RequestValidationError("", "the inbound script must be a JSON array of calls")
    calls: list[ScriptedCall] = []
    for index, item in enumerate(data):
        where = f"[{index}]"
        if not isinstance(item, Mapping):
            raise RequestValidationError(where, "must be an object with number, caller and tool_calls")
        unknown = sorted(str(k) for k in item if k not in _KEYS)
        if unknown:
            raise RequestValidationError(
                f"{where}.{unknown[0]}", "unknown key (allowed: " + ", ".join(_KEYS) + ")"
            )
        number = item.get("number")
        if not isinstance(number, str) or not number.strip():
            raise RequestValidationError(f"{where}.number", "required: the E.164 number (or id) to ring")
        caller = item.get("caller")
        if not is_e164(caller):
            raise RequestValidationError(
                f"{where}.caller", "must be an E.164 phone number such as +31612345678"
            )
        rounds = parse_tool_calls(item.get("tool_calls", []), f"{where}.tool_calls")
        duration = item.get("duration")
        if duration is not None and not _positive(duration):
            raise RequestValidationError(
                f"{where}.duration", "must be a positive number of simulated seconds"
            )
        delay = item.get("delay", 0)
        if not (_positive(delay) or delay == 0) or isinstance(delay, bool):
            raise RequestValidationError(f"{where}.delay", "must be a number of simulated seconds >= 0")
        calls.append(
            ScriptedCall(
                number=number.strip(),
                caller=str(caller),
                tool_calls=tuple(tuple(one) for one in rounds),
                duration=float(duration) if duration is not None else None,
                delay=float(delay),
            )
        )
    return calls


async def run_inbound_script(fake: FakeFlireo, calls: list[ScriptedCall], out: TextIO) -> None:
    """Ring the scripted calls one after the other, printing a line as each starts and ends."""
    for call in calls:
        number_id = await _registered(fake, call.number, out)
        await fake.clock.sleep(call.delay)
        try:
            inbound = await fake.simulate_inbound_call(
                number_id,
                caller=call.caller,
                tool_calls=[
                    [{"name": name, "arguments": args} for name, args in one] for one in call.tool_calls
                ],
                duration=call.duration,
            )
        except RequestValidationError as exc:  # the number was deleted meanwhile
            print(f"inbound call to {call.number} not started: {exc}", file=out, flush=True)
            continue
        print(f"inbound call {inbound.id}: {call.caller} rings {call.number}", file=out, flush=True)
        await inbound.wait(timeout=None)
        print(describe(inbound), file=out, flush=True)
    print(f"inbound script done ({len(calls)} call(s))", file=out, flush=True)


async def _registered(fake: FakeFlireo, number: str, out: TextIO) -> str:
    """The id of the number once it is registered with an agent (waiting for that if need be)."""
    announced = False
    while True:
        for candidate in fake.state.numbers.values():
            if number in (candidate.get("id"), candidate.get("phone_number")) and candidate.get("agent_id"):
                return str(candidate["id"])
        if not announced:
            print(
                f"inbound script: waiting for {number} to be registered with an agent", file=out, flush=True
            )
            announced = True
        await asyncio.sleep(_POLL_SECONDS)


def describe(call: InboundCall) -> str:
    """One line about an ended inbound call: status, how the agent was chosen, tool results."""
    record = call.record
    parts = [f"inbound call {call.id}: {call.status} ({record.get('end_reason')})"]
    outcome = call.assistant_request
    if outcome is not None:
        parts.append(
            f"assistant-request: {outcome.answer}" + (f" ({outcome.reason})" if outcome.reason else "")
        )
    for tool in call.tool_calls:
        parts.append(f"tool {tool.name}: " + ("ok" if tool.ok else f"error: {tool.error}"))
    return "; ".join(parts)


def _positive(value: Any) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")
