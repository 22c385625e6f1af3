"""Public serialisation of models: ``to_dict`` / ``to_json`` / ``from_dict`` and concise reprs."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from flireo_async import UNSET, RequestValidationError, models
from flireo_async._convert import decode
from flireo_async._model import Model

from .test_spec import EXAMPLES


def model_class(schema: str, example: Any) -> type[Model] | None:
    """The class an example decodes into (a union schema: the member its tag picks), or None
    for the few examples of a union that admits a plain JSON object."""
    target = getattr(models, schema)
    decoded = type(decode(example, target)) if not isinstance(target, type) else target
    return decoded if issubclass(decoded, Model) else None


MODEL_EXAMPLES = [
    (label, cls, example) for label, schema, example in EXAMPLES if (cls := model_class(schema, example))
]


def test_nearly_every_example_is_a_model() -> None:
    assert len(MODEL_EXAMPLES) >= len(EXAMPLES) - 3


@pytest.mark.parametrize(("label", "cls", "example"), MODEL_EXAMPLES, ids=[e[0] for e in MODEL_EXAMPLES])
def test_every_spec_example_round_trips_through_from_dict_and_to_dict(
    label: str, cls: type[Model], example: Any
) -> None:
    model = cls.from_dict(example)
    assert isinstance(model, cls)
    assert model.to_dict() == example
    assert json.loads(model.to_json()) == example
    assert cls.from_dict(model.to_dict()) == model
    # The repr shows what is present and never spells out an absent field.
    assert "UNSET" not in repr(model)


def test_to_dict_uses_wire_names_leaves_out_absent_fields_and_keeps_null() -> None:
    call = models.Call(
        id="call-1",
        status="ended",
        error=None,
        started_at=datetime(2026, 1, 7, 12, 0, 5, 250000, tzinfo=timezone(timedelta(hours=2))),
    )
    assert call.to_dict() == {
        "id": "call-1",
        "status": "ended",
        "started_at": "2026-01-07T10:00:05.250Z",  # ISO 8601, in UTC
        "error": None,
    }
    assert json.loads(call.to_json(indent=2)) == call.to_dict()
    assert "\n  " in call.to_json(indent=2)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_to_json_names_a_number_json_cannot_carry(value: float) -> None:
    agent = models.Agent(
        id="agent-1",
        name="Support",
        llm_config=models.LLMConfig(provider="openai", model="gpt-4o-mini", temperature=value),
    )
    with pytest.raises(RequestValidationError) as info:
        agent.to_json()
    assert info.value.field == "llm_config.temperature"
    assert "Agent.to_json" in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None  # json's own error is not chained


def test_to_dict_encodes_nested_models_and_puts_back_unknown_keys() -> None:
    config = models.LLMConfig.from_dict(
        {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "messages": [{"role": "system", "content": "Hi"}],
            "new": 1,
        }
    )
    assert config.extra == {"new": 1}
    assert isinstance(config.messages, list)
    assert isinstance(config.messages[0], models.LLMMessage)
    assert config.to_dict() == {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "Hi"}],
        "new": 1,
    }


def test_from_dict_is_lenient_like_a_response() -> None:
    # `status` is required by the spec for a Call, but a response that leaves it out still decodes.
    call = models.Call.from_dict({"id": "call-1", "duration_seconds": 12})
    assert call.status is UNSET
    assert call.duration_seconds == 12


def test_from_dict_names_the_bad_field() -> None:
    with pytest.raises(RequestValidationError) as info:
        models.Call.from_dict({"id": "call-1", "messages": [{"role": "user", "content": 5}]})
    assert info.value.field == "messages[0].content"
    assert "Call.from_dict" in str(info.value)
    with pytest.raises(RequestValidationError, match="expects a mapping"):
        models.Call.from_dict(["id"])  # type: ignore[arg-type]


def test_repr_omits_absent_fields() -> None:
    call = models.Call(id="call-1", status="ended", error=None)
    assert repr(call) == "Call(id='call-1', status='ended', error=None)"
    # Call has more than 30 fields: a repr that listed every absent one ran past 1,000 characters.
    assert repr(models.Call(id="call-1")) == "Call(id='call-1')"


def test_repr_of_nested_models_is_concise_too() -> None:
    config = models.LLMConfig(
        provider="openai", model="gpt-4o-mini", messages=[models.LLMMessage(role="user", content="Hi")]
    )
    assert (
        repr(config)
        == "LLMConfig(provider='openai', model='gpt-4o-mini', messages=[LLMMessage(role='user', content='Hi')])"
    )


def test_secrets_stay_hidden_in_repr_but_are_serialised() -> None:
    agent = models.AgentCreate(name="Support", webhook_secret="whsec_do_not_show")
    assert "whsec_do_not_show" not in repr(agent)
    assert repr(agent) == "AgentCreate(name='Support', webhook_secret='***')"
    # to_dict is what would be sent: the secret is part of the request.
    assert agent.to_dict() == {"name": "Support", "webhook_secret": "whsec_do_not_show"}
