"""Scripted inbound calls in the fake-server process: ``--inbound-script FILE`` on
``python -m flireo_async.testing`` and on ``flireo mock``."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from flireo_async import AsyncFlireo, RequestValidationError
from flireo_async.testing._script import ScriptedCall, load_inbound_script, parse_inbound_script
from flireo_async.webhooks import EndOfCallReportMessage, ToolInvocation, WebhookRouter

SECRET = "whsec_script_e2e_9"
CALLER = "+31612345678"
NUMBER = "+31850835037"


def test_script_is_parsed() -> None:
    calls = parse_inbound_script(
        [
            {"number": NUMBER, "caller": CALLER},
            {
                "number": "c4a8e2f1-3b6d-4f9a-8e7c-1d2b3a4c5e6f",
                "caller": "+31687654321",
                "tool_calls": [{"name": "a", "arguments": {"x": 1}}, [{"name": "b"}, {"name": "c"}]],
                "duration": 30,
                "delay": 2.5,
            },
        ]
    )
    assert calls == [
        ScriptedCall(number=NUMBER, caller=CALLER),
        ScriptedCall(
            number="c4a8e2f1-3b6d-4f9a-8e7c-1d2b3a4c5e6f",
            caller="+31687654321",
            tool_calls=((("a", {"x": 1}),), (("b", {}), ("c", {}))),
            duration=30.0,
            delay=2.5,
        ),
    ]


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ({"calls": []}, "the inbound script must be a JSON array of calls"),
        (["x"], "[0]: must be an object"),
        ([{"caller": CALLER}], "[0].number: required"),
        ([{"number": NUMBER, "caller": "06-12345678"}], "[0].caller: must be an E.164 phone number"),
        ([{"number": NUMBER, "caller": CALLER, "when": 3}], "[0].when: unknown key"),
        ([{"number": NUMBER, "caller": CALLER, "duration": -1}], "[0].duration: must be a positive number"),
        ([{"number": NUMBER, "caller": CALLER, "delay": True}], "[0].delay: must be a number"),
        (
            [{"number": NUMBER, "caller": CALLER}, {"number": NUMBER, "caller": CALLER, "tool_calls": [{}]}],
            "[1].tool_calls[0].name: must be a non-empty string",
        ),
    ],
)
def test_bad_script_names_the_item_and_field(script: Any, message: str) -> None:
    with pytest.raises(RequestValidationError) as info:
        parse_inbound_script(script)
    assert str(info.value).startswith(message)


def test_bad_script_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "calls.json"
    path.write_text('[{"number": "+31850835037", "caller": "+31612345678", "duration": NaN}]')
    with pytest.raises(RequestValidationError, match=r"^inbound script .*calls\.json: not valid JSON"):
        load_inbound_script(path)
    path.write_text('[{"number": "+31850835037", "caller": "nobody"}]')
    with pytest.raises(RequestValidationError, match=r"^inbound script .*calls\.json \[0\]\.caller: must be"):
        load_inbound_script(path)


async def _line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    # A guard against a hung process, not a timing assertion.
    return (await asyncio.wait_for(process.stdout.readline(), 30)).decode().rstrip("\n")


async def test_fake_server_process_rings_scripted_calls(tmp_path: Path) -> None:
    script = tmp_path / "inbound.json"
    script.write_text(
        json.dumps(
            [
                {
                    "number": NUMBER,
                    "caller": CALLER,
                    "tool_calls": [{"name": "lookup_customer", "arguments": {"phone": CALLER}}],
                    "duration": 2,
                }
            ]
        )
    )
    router = WebhookRouter(SECRET)
    tools: list[ToolInvocation] = []
    reports: list[EndOfCallReportMessage] = []

    @router.tool("lookup_customer")
    async def lookup(tool: ToolInvocation) -> dict[str, str]:
        tools.append(tool)
        return {"name": "Jan"}

    router.end_of_call_report(reports.append)

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "flireo_async.testing",
        "--port",
        "0",
        "--speed",
        "20",
        "--rate-limit",
        "0",
        "--inbound-script",
        str(script),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        lines = [await _line(process)]
        while "FLIREO_API_KEY" not in lines[-1]:
            lines.append(await _line(process))
        url = lines[0].split(" on ", 1)[1].split()[0]
        key = lines[-1].split("=", 1)[1]
        async with (
            await router.start(port=0) as server,
            AsyncFlireo(api_key=key, base_url=url, rate_limit=None) as client,
        ):
            agent = await client.agents.create(  # type: ignore[call-overload]  # plain dicts
                name="Scripted",
                webhook_url=server.url,
                webhook_secret=SECRET,
                llm_config={
                    "provider": "openai",
                    "model": "gpt-4o-mini",
                    "tools": [{"name": "lookup_customer", "description": "CRM lookup"}],
                },
            )
            await client.numbers.create(phone_number=NUMBER, agent_id=agent.id)
            while not lines[-1].startswith("inbound script done"):
                lines.append(await _line(process))
            calls = await client.calls.list()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 30)
            finally:
                if process.returncode is None:  # Ctrl-C did not stop it: never leave it running
                    process.kill()
                    await process.wait()
    assert process.returncode == 0

    assert "Inbound script: 1 call(s), each once its number is registered." in lines
    (call,) = calls.items
    assert f"inbound call {call.id}: {CALLER} rings {NUMBER}" in lines
    assert (
        f"inbound call {call.id}: ended ({call.end_reason}); assistant-request: saved_agent; "
        "tool lookup_customer: ok"
    ) in lines
    assert lines[-1] == "inbound script done (1 call(s))"
    assert call.direction == "inbound"
    assert [t.arguments for t in tools] == [{"phone": CALLER}]
    assert [r.call.id for r in reports] == [call.id]


async def test_flireo_mock_passes_the_script_through(tmp_path: Path) -> None:
    script = tmp_path / "inbound.json"
    script.write_text(json.dumps([{"number": NUMBER, "caller": CALLER, "tool_calls": [{"name": 7}]}]))
    for command in (("flireo_async.cli", "mock"), ("flireo_async.testing",)):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            *command,
            "--port",
            "0",
            "--inbound-script",
            str(script),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), 30)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.returncode == 2, command
        assert out == b""  # checked before the server starts
        (line,) = err.decode().splitlines()
        assert line.endswith(f"inbound script {script} [0].tool_calls[0].name: must be a non-empty string")
