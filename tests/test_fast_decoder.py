"""The compiled per-shape decoders against the precise slow path: the same instances (equal,
same hash and repr, same types), the same errors, and classes with validators still validated."""

from __future__ import annotations

import copy
import datetime as dt
import logging
import pickle
import random
import sys
import weakref
from typing import Any

import attrs
import pytest

from flireo_async._convert import (
    DecodeError,
    _attrs_structure_slow,
    _unfrozen_twin,
    converter,
    decode,
    lenient_converter,
)
from flireo_async._generated import models
from flireo_async._model import Model
from flireo_async._types import UNSET, UnsetType
from flireo_async.models import Agent, UsageLog

from .conftest import AGENT

UTC = dt.timezone.utc


def usage_row(rng: random.Random, i: int) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": f"log-{i}",
        "duration_sec": rng.choice([0, 30, 599, 3600]),
        "byok_stt": rng.random() < 0.5,
        "byok_llm": False,
        "byok_tts": True,
        "call_type": rng.choice(["phone", "web", "sip"]),
        "phone_number": rng.choice(["+31850835037", None]),
        "agent_name": rng.choice(["Agent", None, "Zoë"]),
        "business_name": None,
        "created_at": rng.choice(
            [
                "2026-01-07T10:00:00.000Z",
                "2026-01-07T10:00:00Z",
                "2026-01-07T11:00:00+01:00",
                "2026-01-07T10:00:00",
            ]
        ),
    }
    if rng.random() < 0.3:
        row["unknown_key"] = {"nested": [1, 2]}
    if rng.random() < 0.2:
        row["duration_seconds"] = row.pop("duration_sec")  # the decode-only alias
    if rng.random() < 0.2:
        del row[rng.choice(["byok_stt", "phone_number", "call_type"])]
    if rng.random() < 0.1:
        row["cost"] = rng.choice([0.25, 3])
    return row


def hashed(value: Any) -> Any:
    """The hash, or the error hashing raises (a model holding a dict in ``extra`` has none)."""
    try:
        return hash(value)
    except TypeError as exc:
        return str(exc)


@pytest.mark.parametrize("conv", [converter, lenient_converter], ids=["strict", "lenient"])
def test_fast_and_slow_paths_build_identical_usage_logs(conv: Any) -> None:
    rng = random.Random(7)
    fast = conv.get_structure_hook(UsageLog)
    slow = _attrs_structure_slow(conv, UsageLog)
    for i in range(3000):
        row = usage_row(rng, i)
        a, b = fast(dict(row), UsageLog), slow(dict(row), UsageLog)
        assert type(a) is type(b) is UsageLog
        assert a == b
        assert hashed(a) == hashed(b)
        assert repr(a) == repr(b)
        assert attrs.asdict(a) == attrs.asdict(b)
        assert isinstance(a.created_at, dt.datetime)
        assert a.created_at.tzinfo is not None
        assert a.created_at == dt.datetime(2026, 1, 7, 10, tzinfo=UTC)
        # The built instance is the one the class's own __init__ builds from the same values.
        assert a == UsageLog(**{f.name: getattr(b, f.name) for f in attrs.fields(UsageLog)})


def test_frozen_instances_built_fast_stay_frozen() -> None:
    log = decode(usage_row(random.Random(1), 1), UsageLog)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        log.id = "other"  # type: ignore[misc]
    assert attrs.evolve(log, id="other").id == "other"
    assert type(log) is UsageLog
    assert weakref.ref(log)() is log  # the weak-reference slot every model has (from Model)
    assert pickle.loads(pickle.dumps(log)) == log
    assert copy.copy(log) == log


def test_the_twin_is_refused_where_the_class_switch_would_change_the_layout() -> None:
    @attrs.frozen(kw_only=True)  # declares its own weak-reference slot after its fields
    class OwnWeakref:
        name: str

    @attrs.frozen(kw_only=True, weakref_slot=False)
    class NoWeakref:
        name: str

    # Python 3.12 moved the weak-reference list out of the slots, so the layouts match there.
    assert (_unfrozen_twin(OwnWeakref) is None) == (sys.version_info < (3, 12))
    own = decode({"name": "a"}, OwnWeakref)
    assert (type(own), own) == (OwnWeakref, OwnWeakref(name="a"))
    assert _unfrozen_twin(NoWeakref) is not None
    built = decode({"name": "a"}, NoWeakref)
    assert type(built) is NoWeakref
    assert built == NoWeakref(name="a")

    @attrs.frozen(weakref_slot=False)
    class FrozenBase:  # no fields, but a __setattr__ that refuses every store
        pass

    @attrs.frozen(kw_only=True, weakref_slot=False)
    class OnFrozenBase(FrozenBase):
        name: str

    class Mixin:
        __slots__ = ()

    @attrs.frozen(kw_only=True, weakref_slot=False)
    class TwoBases(FrozenBase, Mixin):
        name: str

    assert _unfrozen_twin(OnFrozenBase) is not None
    on_base = decode({"name": "b"}, OnFrozenBase)
    assert (type(on_base), on_base) == (OnFrozenBase, OnFrozenBase(name="b"))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        on_base.name = "c"  # type: ignore[misc]
    assert _unfrozen_twin(TwoBases) is None
    assert decode({"name": "d"}, TwoBases) == TwoBases(name="d")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"created_at": "yesterday"}, "created_at"),
        ({"created_at": "2026-13-40T10:00:00Z"}, "created_at"),
        ({"created_at": 1767780000}, "created_at"),
        ({"duration_sec": "30"}, "duration_sec"),
        ({"byok_llm": 1}, "byok_llm"),
        ({"id": None}, "id"),
    ],
)
def test_bad_values_fall_back_to_the_precise_error(change: dict[str, Any], field: str) -> None:
    hook = converter.get_structure_hook(UsageLog)
    good = usage_row(random.Random(2), 2)
    hook(dict(good), UsageLog)  # compiles and caches the shape first
    with pytest.raises(DecodeError) as info:
        hook({**good, **change}, UsageLog)
    assert info.value.path == field


def test_every_generated_model_is_built_through_its_twin() -> None:
    classes = [
        c for c in vars(models).values() if isinstance(c, type) and issubclass(c, Model) and attrs.has(c)
    ]
    assert len(classes) > 50
    plain = [c.__name__ for c in classes if _unfrozen_twin(c) is not None]
    assert sorted(plain) == sorted(c.__name__ for c in classes)


def test_nested_models_decode_the_same_both_ways() -> None:
    a = converter.get_structure_hook(Agent)(dict(AGENT), Agent)
    b = _attrs_structure_slow(converter, Agent)(dict(AGENT), Agent)
    assert a == b
    assert repr(a) == repr(b)
    assert hashed(a) == hashed(b)
    assert type(a.llm_config) is type(b.llm_config)


def _magnitude(value: int) -> int:
    return abs(value)


@attrs.frozen(kw_only=True)
class Checked:
    name: str = attrs.field(validator=attrs.validators.min_len(2))
    size: int = attrs.field(default=1, converter=_magnitude)


@attrs.frozen(kw_only=True, cache_hash=True)
class CachedHash:
    name: str


@attrs.frozen(kw_only=True)
class PostInit:
    name: str
    seen: list[str] = attrs.field(factory=list, eq=False)

    def __attrs_post_init__(self) -> None:
        self.seen.append(self.name)


def test_classes_with_validators_converters_hooks_or_cached_hash_are_built_by_their_init() -> None:
    assert _unfrozen_twin(Checked) is None
    assert _unfrozen_twin(CachedHash) is None
    assert _unfrozen_twin(PostInit) is None
    assert decode({"name": "ok", "size": -3}, Checked) == Checked(name="ok", size=3)
    for _ in range(2):  # the second time through the cached shape
        with pytest.raises(ValueError, match="name"):
            decode({"name": "x", "size": 1}, Checked)
        assert decode({"name": "ok", "size": -4}, Checked).size == 4
    cached = decode({"name": "a"}, CachedHash)
    assert hash(cached) == hash(CachedHash(name="a"))
    assert decode({"name": "p"}, PostInit).seen == ["p"]


@attrs.frozen(kw_only=True)
class CheckedWithGap:
    name: str = attrs.field(validator=attrs.validators.min_len(2))
    size: int | UnsetType = attrs.field(default=UNSET, metadata={"required": True})


def test_a_class_built_by_its_init_still_reports_gaps_in_lenient_mode(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from flireo_async._logging import logger

    with caplog.at_level(logging.DEBUG, logger=logger.name):
        for _ in range(2):
            value = decode({"name": "ok"}, CheckedWithGap, strict=False)
            assert value == CheckedWithGap(name="ok")
    assert caplog.text.count("CheckedWithGap.size") == 1
    with pytest.raises(DecodeError) as info:
        decode({"name": "ok"}, CheckedWithGap)
    assert info.value.path == "size"


def test_lists_of_scalars_are_copied_and_a_bad_item_is_named() -> None:
    events = ["tool-calls", "status-update"]
    decoded = decode(events, list[str])
    assert decoded == events
    assert decoded is not events  # a model never shares a list with the caller's data
    with pytest.raises(DecodeError) as info:
        decode(["tool-calls", 3], list[str])
    assert info.value.path == "[1]"
    assert decode([1, 2.0], list[int]) == [1, 2]  # an integral float still counts as an integer
    assert type(decode([1, 2.0], list[int])[1]) is int
    with pytest.raises(DecodeError) as info:
        decode([1, True], list[int])  # a boolean is not an integer
    assert info.value.path == "[1]"
    with pytest.raises(DecodeError) as info:
        decode([True, 1], list[bool])
    assert info.value.path == "[1]"
