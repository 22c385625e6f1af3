"""The converter: strict types, lenient shapes, UNSET vs null, unions, datetimes."""

from __future__ import annotations

import datetime as dt

import pytest

from flireo_async import UNSET
from flireo_async._convert import DecodeError, decode, encode, format_datetime, parse_datetime
from flireo_async.models import (
    Agent,
    AgentUpdate,
    CallControlCommand,
    EndCallCommand,
    EndCallToolTemplate,
    FunctionTool,
    GenericToolTemplate,
    NestedFunctionTool,
    Organization,
    SayCommand,
    ToolDefinition,
    ToolTemplate,
    TransferCallTool,
    UsageLog,
)

from .conftest import AGENT as AGENT_JSON

# The updated_at without milliseconds: both forms must parse.
AGENT = {**AGENT_JSON, "updated_at": "2026-01-07T10:00:00Z"}


def test_datetimes_with_and_without_milliseconds() -> None:
    a = parse_datetime("2026-01-07T10:00:00.000Z")
    b = parse_datetime("2026-01-07T10:00:00Z")
    assert a == b == dt.datetime(2026, 1, 7, 10, tzinfo=dt.timezone.utc)
    assert format_datetime(a) == "2026-01-07T10:00:00.000Z"
    cet = dt.timezone(dt.timedelta(hours=1))
    assert format_datetime(dt.datetime(2026, 1, 7, 11, tzinfo=cet)) == "2026-01-07T10:00:00.000Z"
    agent = decode(AGENT, Agent)
    assert isinstance(agent.created_at, dt.datetime)
    assert agent.created_at == agent.updated_at


def test_absent_is_unset_and_null_is_none() -> None:
    agent = decode(AGENT, Agent)
    assert agent.tts_config is None
    assert agent.business_name is UNSET
    out = encode(agent)
    assert out["tts_config"] is None
    assert "business_name" not in out


def test_patch_sends_null_to_clear_and_omits_unset() -> None:
    body = encode(AgentUpdate(business_name=None, name="New"))
    assert body == {"business_name": None, "name": "New"}


def test_unknown_fields_are_kept_and_re_encoded() -> None:
    agent = decode({**AGENT, "brand_new_field": {"x": 1}}, Agent)
    assert agent.extra == {"brand_new_field": {"x": 1}}
    assert encode(agent)["brand_new_field"] == {"x": 1}


def test_unknown_open_enum_value_decodes() -> None:
    log = decode(
        {"id": "u", "duration_sec": 3, "call_type": "hologram", "created_at": "2026-01-07T10:00:00.000Z"},
        UsageLog,
    )
    assert log.call_type == "hologram"


def test_aliases_and_camel_case_decode() -> None:
    log = decode({"id": "u", "duration_seconds": 12, "created_at": "2026-01-07T10:00:00.000Z"}, UsageLog)
    assert log.duration_sec == 12
    org = decode(
        {
            "id": "o",
            "company_name": "Acme",
            "minutes_balance": 1,
            "monthly_usage_minutes": 2,
            "active_numbers": 1,
            "active_agents": 1,
            "active_calls": 0,
        },
        Organization,
    )
    assert org.name == "Acme"


def test_wrong_type_names_the_field_path() -> None:
    bad = {**AGENT, "llm_config": {"provider": "openai", "model": "m", "temperature": "hot"}}
    with pytest.raises(DecodeError) as info:
        decode(bad, Agent)
    assert info.value.path == "llm_config.temperature"
    assert "number" in info.value.problem


def test_missing_required_field_is_named() -> None:
    bad = {k: v for k, v in AGENT.items() if k != "name"}
    with pytest.raises(DecodeError, match="name"):
        decode(bad, Agent)


def test_call_control_commands_are_a_closed_tagged_union() -> None:
    assert isinstance(
        decode({"type": "say", "content": "hi", "end_after": False}, CallControlCommand), SayCommand
    )
    assert isinstance(decode({"type": "end-call"}, CallControlCommand), EndCallCommand)
    with pytest.raises(DecodeError, match="unknown type"):
        decode({"type": "dance"}, CallControlCommand)
    assert encode(SayCommand(content="hi", end_after=True)) == {
        "type": "say",
        "content": "hi",
        "end_after": True,
    }


def test_tool_templates_dispatch_on_tool_type_with_aliases_and_fallback() -> None:
    base = {
        "id": "t",
        "org_id": "o",
        "name": "n",
        "created_at": "2026-01-07T10:00:00.000Z",
        "updated_at": "2026-01-07T10:00:00.000Z",
    }
    end = decode({**base, "tool_type": "endCall", "tool_config": {}}, ToolTemplate)
    assert isinstance(end, EndCallToolTemplate)
    other = decode({**base, "tool_type": "sms", "tool_config": {"to": "+31"}}, ToolTemplate)
    assert isinstance(other, GenericToolTemplate)
    assert other.tool_config == {"to": "+31"}


def test_tool_definitions_decode_by_shape() -> None:
    tools = decode(
        [
            {"name": "lookup", "description": "d"},
            {"type": "function", "function": {"name": "f"}},
            {
                "type": "transferCall",
                "destinations": [{"type": "number", "number": "+31201234567", "description": "x"}],
            },
        ],
        list[ToolDefinition],
    )
    assert [type(t) for t in tools] == [FunctionTool, NestedFunctionTool, TransferCallTool]


def test_decoders_keep_keys_apart_across_objects_of_the_same_size() -> None:
    """The compiled decoders reuse the last key layout; a different layout must not be mistaken for it."""
    base = {"id": "u", "duration_sec": 3, "created_at": "2026-01-07T10:00:00.000Z"}
    both = decode({**base, "duration_seconds": 4}, UsageLog)  # canonical and alias: canonical wins
    assert both.duration_sec == 3
    other = decode({**base, "surprise": 1}, UsageLog)  # same size, an unknown key instead
    assert other.extra == {"surprise": 1}
    alias_only = decode(
        {"id": "u", "duration_seconds": 9, "created_at": "2026-01-07T10:00:00.000Z", "x": 1}, UsageLog
    )
    assert alias_only.duration_sec == 9
    assert alias_only.extra == {"x": 1}
    logs = decode([base, {**base, "id": "v"}], list[UsageLog])
    assert [log.id for log in logs] == ["u", "v"]
    with pytest.raises(DecodeError) as info:
        decode([base, {**base, "duration_sec": "bad"}], list[UsageLog])
    assert info.value.path == "[1].duration_sec"


def test_format_datetime_is_iso_8601_utc_with_milliseconds_for_any_year() -> None:
    utc = dt.timezone.utc
    assert format_datetime(dt.datetime(1, 1, 1, tzinfo=utc)) == "0001-01-01T00:00:00.000Z"
    assert format_datetime(dt.datetime(2026, 1, 7, 0, 0, 0, 999999, tzinfo=utc)) == "2026-01-07T00:00:00.999Z"
    assert format_datetime(dt.datetime(2026, 1, 7, 10)) == "2026-01-07T10:00:00.000Z"
    zero = dt.timezone(dt.timedelta(0), "UTC+0")
    assert format_datetime(dt.datetime(2026, 1, 7, 10, tzinfo=zero)) == "2026-01-07T10:00:00.000Z"
    minus = dt.timezone(-dt.timedelta(hours=5, minutes=30))
    assert format_datetime(dt.datetime(2026, 1, 7, 4, 30, tzinfo=minus)) == "2026-01-07T10:00:00.000Z"
