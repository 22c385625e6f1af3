"""JSON <-> attrs conversion through one cattrs converter.

Decoding is strict about types (a string is never silently turned into a number) and
lenient about shape: unknown keys are kept in each model's ``extra`` mapping, absent optional
keys become :data:`UNSET`, wire names come from field metadata, and decode-only aliases
(``assistant_id`` for ``agent_id``, camelCase spellings) are accepted. Encoding leaves out
UNSET fields and sends ``None`` as JSON null. Tagged unions come from the spec's
discriminators through the generated ``TAGGED_UNIONS`` table.
"""

from __future__ import annotations

import datetime as _dt
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar, Union

import attrs
import cattrs

from ._types import ALIASES, EXTRA, UNSET, WIRE, TaggedUnion, UnsetType

__all__ = [
    "DecodeError",
    "converter",
    "decode",
    "encode",
    "parse_datetime",
    "format_datetime",
]

T = TypeVar("T")


class DecodeError(ValueError):
    """A JSON value does not fit the declared type; ``path`` locates it (``tools[2].name``)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.parts: list[str | int] = []

    @property
    def path(self) -> str:
        text = ""
        for part in self.parts:
            if isinstance(part, int):
                text += f"[{part}]"
            else:
                text += f".{part}" if text else part
        return text

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}" if self.parts else self.problem


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )


def parse_datetime(value: str) -> _dt.datetime:
    """Parse an ISO 8601 timestamp, with or without milliseconds; a naive one is taken as UTC."""
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    parsed = _dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.timezone.utc)
    return parsed


def format_datetime(value: _dt.datetime) -> str:
    """Format as the API does: UTC, milliseconds, ``Z`` (a naive datetime is taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    value = value.astimezone(_dt.timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class _Converter(cattrs.Converter):
    """The SDK's converter; build one with :func:`_make_converter`."""

    tagged_unions: dict[frozenset[type], TaggedUnion]


def _make_converter() -> _Converter:
    conv = _Converter(detailed_validation=False)
    conv.tagged_unions = {}

    def structure_str(value: Any, _: Any) -> str:
        if type(value) is str:
            return value
        raise DecodeError(f"expected a string, got {_kind(value)}")

    def structure_int(value: Any, _: Any) -> int:
        if type(value) is int:
            return value
        if type(value) is float and value.is_integer():
            return int(value)
        raise DecodeError(f"expected an integer, got {_kind(value)}")

    def structure_float(value: Any, _: Any) -> float:
        if type(value) is float or type(value) is int:
            return float(value)
        raise DecodeError(f"expected a number, got {_kind(value)}")

    def structure_bool(value: Any, _: Any) -> bool:
        if type(value) is bool:
            return value
        raise DecodeError(f"expected a boolean, got {_kind(value)}")

    def structure_datetime(value: Any, _: Any) -> _dt.datetime:
        if isinstance(value, _dt.datetime):
            return value
        if type(value) is str:
            try:
                return parse_datetime(value)
            except ValueError:
                pass
        raise DecodeError(f"expected an ISO 8601 date-time, got {value!r}")

    def structure_any(value: Any, _: Any) -> Any:
        return value

    conv.register_structure_hook(str, structure_str)
    conv.register_structure_hook(int, structure_int)
    conv.register_structure_hook(float, structure_float)
    conv.register_structure_hook(bool, structure_bool)
    conv.register_structure_hook(_dt.datetime, structure_datetime)
    conv.register_structure_hook(Any, structure_any)
    conv.register_unstructure_hook(_dt.datetime, format_datetime)

    conv.register_structure_hook_factory(_is_list, lambda t: _list_hook(conv, t))
    conv.register_structure_hook_factory(_is_dict, lambda t: _dict_hook(conv, t))
    conv.register_structure_hook_factory(_is_literal, _literal_hook)
    conv.register_structure_hook_factory(_is_union, lambda t: _union_hook(conv, t))
    conv.register_structure_hook_factory(attrs.has, lambda cls: _attrs_structure_hook(conv, cls))
    conv.register_unstructure_hook_factory(attrs.has, lambda cls: _attrs_unstructure_hook(conv, cls))
    return conv


def _origin(tp: Any) -> Any:
    return typing.get_origin(tp)


def _is_list(tp: Any) -> bool:
    return _origin(tp) in (list, typing.List)  # noqa: UP006


def _is_dict(tp: Any) -> bool:
    return _origin(tp) in (dict, typing.Dict, Mapping)  # noqa: UP006


def _is_literal(tp: Any) -> bool:
    return _origin(tp) is Literal


def _is_union(tp: Any) -> bool:
    return _origin(tp) in (Union, types.UnionType)


def _list_hook(conv: _Converter, tp: Any) -> Callable[[Any, Any], list[Any]]:
    (item_type,) = typing.get_args(tp) or (Any,)
    item_hook = conv.get_structure_hook(item_type)

    def structure_list(value: Any, _: Any) -> list[Any]:
        if type(value) is not list:
            raise DecodeError(f"expected an array, got {_kind(value)}")
        out = []
        for index, item in enumerate(value):
            try:
                out.append(item_hook(item, item_type))
            except DecodeError as exc:
                exc.parts.insert(0, index)
                raise
        return out

    return structure_list


def _dict_hook(conv: _Converter, tp: Any) -> Callable[[Any, Any], dict[str, Any]]:
    args = typing.get_args(tp)
    value_type = args[1] if len(args) == 2 else Any
    if value_type is Any:

        def structure_free(value: Any, _: Any) -> dict[str, Any]:
            if type(value) is not dict:
                raise DecodeError(f"expected an object, got {_kind(value)}")
            return value

        return structure_free
    value_hook = conv.get_structure_hook(value_type)

    def structure_dict(value: Any, _: Any) -> dict[str, Any]:
        if type(value) is not dict:
            raise DecodeError(f"expected an object, got {_kind(value)}")
        out = {}
        for key, item in value.items():
            try:
                out[key] = value_hook(item, value_type)
            except DecodeError as exc:
                exc.parts.insert(0, key)
                raise
        return out

    return structure_dict


def _literal_hook(tp: Any) -> Callable[[Any, Any], Any]:
    allowed = typing.get_args(tp)

    def structure_literal(value: Any, _: Any) -> Any:
        if value in allowed:
            return value
        raise DecodeError(f"expected one of {', '.join(map(repr, allowed))}, got {value!r}")

    return structure_literal


def _union_hook(conv: _Converter, tp: Any) -> Callable[[Any, Any], Any]:
    members = [m for m in typing.get_args(tp) if m is not UnsetType]
    nullable = type(None) in members
    members = [m for m in members if m is not type(None)]
    if len(members) == 1:
        (only,) = members
        only_hook = conv.get_structure_hook(only)

        def structure_optional(value: Any, _: Any) -> Any:
            if value is None:
                if nullable:
                    return None
                raise DecodeError("must not be null")
            return only_hook(value, only)

        return structure_optional

    classes = frozenset(m for m in members if attrs.has(m))
    tagged = conv.tagged_unions.get(classes)
    if tagged is not None:
        return _tagged_union_hook(conv, tagged, nullable, members)
    return _untagged_union_hook(conv, members, nullable)


def _tagged_union_hook(
    conv: _Converter, tagged: TaggedUnion, nullable: bool, members: list[Any]
) -> Callable[[Any, Any], Any]:
    hooks = {tag: (cls, conv.get_structure_hook(cls)) for tag, cls in tagged.mapping.items()}
    fallback = tagged.fallback
    fallback_hook = conv.get_structure_hook(fallback) if fallback is not None else None
    others = [m for m in members if not attrs.has(m)]
    other_hook = _untagged_union_hook(conv, others, False) if others else None
    known = ", ".join(repr(tag) for tag in tagged.mapping)

    def structure_tagged(value: Any, _: Any) -> Any:
        if value is None and nullable:
            return None
        if type(value) is not dict:
            if other_hook is not None:
                return other_hook(value, None)
            raise DecodeError(f"expected an object, got {_kind(value)}")
        tag = value.get(tagged.discriminator)
        entry = hooks.get(tag) if isinstance(tag, str) else None
        if entry is not None:
            return entry[1](value, entry[0])
        if fallback_hook is not None:
            return fallback_hook(value, fallback)
        if other_hook is not None:
            return other_hook(value, None)
        exc = DecodeError(f"unknown {tagged.discriminator} {tag!r}; expected one of {known}")
        exc.parts.append(tagged.discriminator)
        raise exc

    return structure_tagged


_PRIMITIVE_CHECKS: dict[Any, Callable[[Any], bool]] = {
    str: lambda v: type(v) is str,
    bool: lambda v: type(v) is bool,
    int: lambda v: type(v) is int,
    float: lambda v: type(v) in (int, float),
    _dt.datetime: lambda v: type(v) is str,
}


def _untagged_union_hook(conv: _Converter, members: list[Any], nullable: bool) -> Callable[[Any, Any], Any]:
    """Try members in order: primitives by JSON type, then classes and containers."""
    candidates = [(m, conv.get_structure_hook(m)) for m in members]

    def structure_untagged(value: Any, _: Any) -> Any:
        if value is None:
            if nullable:
                return None
            raise DecodeError("must not be null")
        first_error: DecodeError | None = None
        for member, hook in candidates:
            check = _PRIMITIVE_CHECKS.get(member)
            if check is not None and not check(value):
                continue
            try:
                return hook(value, member)
            except DecodeError as exc:
                first_error = first_error or exc
        if first_error is not None:
            raise first_error
        raise DecodeError(f"unexpected {_kind(value)}")

    return structure_untagged


@attrs.frozen
class _FieldPlan:
    name: str
    wire: str
    aliases: tuple[str, ...]
    type: Any
    required: bool


def _plans(cls: type) -> tuple[list[_FieldPlan], str | None]:
    hints = typing.get_type_hints(cls)
    plans: list[_FieldPlan] = []
    extra_name: str | None = None
    for field in attrs.fields(cls):
        if field.metadata.get(EXTRA):
            extra_name = field.name
            continue
        wire = field.metadata.get(WIRE, field.name)
        aliases = tuple(field.metadata.get(ALIASES, ()))
        camel = _camel(wire)
        if camel != wire and camel not in aliases:
            aliases += (camel,)
        plans.append(_FieldPlan(field.name, wire, aliases, hints[field.name], field.default is attrs.NOTHING))
    return plans, extra_name


def _attrs_structure_hook(conv: _Converter, cls: type) -> Callable[[Any, Any], Any]:
    """A decoder specialised for ``cls``: a fast path compiled for the class, and a precise
    slow path that runs only when the fast one meets a problem, to name the bad field."""
    slow = _attrs_structure_slow(conv, cls)
    plans, extra_name = _plans(cls)
    known = frozenset({p.wire for p in plans} | {alias for p in plans for alias in p.aliases})
    env: dict[str, Any] = {"cls": cls, "slow": slow, "known": known, "DecodeError": DecodeError}
    lines = [
        "def structure(d, _):",
        "    if type(d) is not dict:",
        "        return slow(d, _)",
        "    kw = {}",
        "    try:",
        "        pass",
    ]
    for i, plan in enumerate(plans):
        keys = (plan.wire, *plan.aliases)
        lines.append(f"        if {plan.wire!r} in d:")
        lines.append(f"            x = d[{plan.wire!r}]")
        for alias in plan.aliases:
            lines.append(f"        elif {alias!r} in d:")
            lines.append(f"            x = d[{alias!r}]")
        lines.append("        else:")
        lines.append("            return slow(d, _)" if plan.required else "            x = kw")
        if not plan.required:
            lines.append("        if x is not kw:")
        pad = "            " if not plan.required else "        "
        lines += [pad + line for line in _convert_lines(conv, env, i, plan.name, plan.type)]
        del keys
    lines.append("    except DecodeError:")
    lines.append("        return slow(d, _)")
    if extra_name is not None:
        lines.append("    if len(d) > len(kw):")
        lines.append("        extra = {k: v for k, v in d.items() if k not in known}")
        lines.append("        if extra:")
        lines.append(f"            kw[{extra_name!r}] = extra")
    lines.append("    return cls(**kw)")
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(lines), f"<flireo decoder {cls.__name__}>", "exec"), env, namespace)  # noqa: S102
    return namespace["structure"]  # type: ignore[no-any-return]


_INLINE_CHECKS = {
    str: "type(x) is str",
    bool: "type(x) is bool",
    int: "type(x) is int",
}


def _convert_lines(conv: _Converter, env: dict[str, Any], i: int, name: str, tp: Any) -> list[str]:
    """Source lines that check/convert ``x`` and store it as ``kw[name]`` (or fall to slow)."""
    members = [m for m in typing.get_args(tp) if m is not UnsetType] if _is_union(tp) else [tp]
    nullable = type(None) in members
    members = [m for m in members if m is not type(None)]
    null = "x is None or " if nullable else ""
    if len(members) == 1:
        (only,) = members
        if only in _INLINE_CHECKS:
            return [
                f"if {null}{_INLINE_CHECKS[only]}:",
                f"    kw[{name!r}] = x",
                "else:",
                "    return slow(d, _)",
            ]
        if only is float:
            return [
                f"if {null}type(x) is float:",
                f"    kw[{name!r}] = x",
                "elif type(x) is int:",
                f"    kw[{name!r}] = float(x)",
                "else:",
                "    return slow(d, _)",
            ]
        if only is Any:
            return [f"kw[{name!r}] = x"]
        env[f"h{i}"] = conv.get_structure_hook(only)
        env[f"t{i}"] = only
        if nullable:
            return [f"kw[{name!r}] = None if x is None else h{i}(x, t{i})"]
        return [f"kw[{name!r}] = h{i}(x, t{i})"]
    env[f"h{i}"] = conv.get_structure_hook(tp)
    env[f"t{i}"] = tp
    return [f"kw[{name!r}] = h{i}(x, t{i})"]


def _attrs_structure_slow(conv: _Converter, cls: type) -> Callable[[Any, Any], Any]:
    plans, extra_name = _plans(cls)
    steps = [(p.name, p.wire, p.aliases, conv.get_structure_hook(p.type), p.type, p.required) for p in plans]
    known = {p.wire for p in plans} | {alias for p in plans for alias in p.aliases}

    def structure_attrs(value: Any, _: Any) -> Any:
        if type(value) is not dict:
            raise DecodeError(f"expected an object, got {_kind(value)}")
        kwargs: dict[str, Any] = {}
        for name, wire, aliases, hook, tp, required in steps:
            key = wire
            if wire not in value:
                for alias in aliases:
                    if alias in value:
                        key = alias
                        break
                else:
                    if required:
                        exc = DecodeError("required field is missing")
                        exc.parts.append(wire)
                        raise exc
                    continue
            try:
                kwargs[name] = hook(value[key], tp)
            except DecodeError as exc:
                exc.parts.insert(0, wire)
                raise
        if extra_name is not None and len(value) > len(kwargs):
            extra = {k: v for k, v in value.items() if k not in known}
            if extra:
                kwargs[extra_name] = extra
        return cls(**kwargs)

    return structure_attrs


def _attrs_unstructure_hook(conv: _Converter, cls: type) -> Callable[[Any], dict[str, Any]]:
    plans, extra_name = _plans(cls)
    steps = [(p.name, p.wire) for p in plans]
    unstructure = conv.unstructure
    scalar = (str, int, float, bool)

    def unstructure_attrs(obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, wire in steps:
            value = getattr(obj, name)
            if value is UNSET:
                continue
            out[wire] = value if value is None or type(value) in scalar else unstructure(value)
        if extra_name is not None:
            for key, value in getattr(obj, extra_name).items():
                out.setdefault(key, value)
        return out

    return unstructure_attrs


converter = _make_converter()
"""The converter used for every request and response body."""


def decode(value: Any, tp: type[T] | Any) -> T:
    """Decode parsed JSON into ``tp``; raises :class:`DecodeError` naming the bad field."""
    return typing.cast(T, converter.structure(value, tp))


def encode(value: Any) -> Any:
    """Encode a model (or a list/dict of them) into JSON-ready Python values."""
    return converter.unstructure(value)


def register_tagged_unions(unions: list[TaggedUnion]) -> None:
    """Register the spec's discriminated unions (called once with the generated table)."""
    for union in unions:
        members = set(union.mapping.values())
        if union.fallback is not None:
            members.add(union.fallback)
        converter.tagged_unions[frozenset(members)] = union


def _register_generated() -> None:
    from ._generated.models import TAGGED_UNIONS

    register_tagged_unions(TAGGED_UNIONS)


_register_generated()
