"""JSON <-> attrs conversion through two cattrs converters, a strict and a lenient one.

Decoding is strict about types (a string is never silently turned into a number) and
lenient about shape: unknown keys are kept in each model's ``extra`` mapping, absent optional
keys become :data:`UNSET`, wire names come from field metadata, decode-only aliases
(``assistant_id`` for ``agent_id``, camelCase spellings) are accepted, and older documented
shapes (the generated ``OLDER_SHAPES`` table) are normalised first. Encoding leaves out UNSET
fields and sends ``None`` as JSON null. Tagged unions come from the spec's discriminators
through the generated ``TAGGED_UNIONS`` table.

The two converters differ only in missing fields. The strict one (request validation, tests of
the fake server, ``strict_responses=True``) enforces every field the spec requires. The lenient
one (responses by default) decodes a field the spec requires but the response left out as
UNSET, and an optional field whose value lacks a required part as UNSET with the raw value kept
in ``extra``: one gap never costs a whole object or page. Each gap is logged once per model and
field at debug level. Fields whose type does not admit UNSET (ids, the items of a page, and the
required fields of objects users build for requests) are enforced by both.
"""

from __future__ import annotations

import datetime as _dt
import sys
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar, Union

import attrs
import cattrs

from ._logging import logger
from ._types import ALIASES, EXTRA, SPEC_REQUIRED, UNSET, WIRE, OlderShape, TaggedUnion, UnsetType

__all__ = [
    "DecodeError",
    "converter",
    "decode",
    "decoder_of",
    "encode",
    "parse_datetime",
    "format_datetime",
]

T = TypeVar("T")


class DecodeError(ValueError):
    """A JSON value does not fit the declared type; ``path`` locates it (``tools[2].name``).

    ``missing`` is true when the cause is a required field that is absent (as opposed to a
    value of the wrong type): lenient decoding tolerates that in optional places.
    """

    def __init__(self, problem: str, *, missing: bool = False) -> None:
        super().__init__(problem)
        self.problem = problem
        self.missing = missing
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


_fromisoformat = _dt.datetime.fromisoformat
_UTC = _dt.timezone.utc
_NATIVE_Z = sys.version_info >= (3, 11)  # fromisoformat understands "Z" from 3.11 on


def parse_datetime(value: str) -> _dt.datetime:
    """Parse an ISO 8601 timestamp, with or without milliseconds; a naive one is taken as UTC."""
    if _NATIVE_Z:
        parsed = _fromisoformat(value)
    else:
        parsed = _fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.timezone.utc)
    return parsed


def format_datetime(value: _dt.datetime) -> str:
    """Format as the API does: UTC, milliseconds, ``Z`` (a naive datetime is taken as UTC)."""
    tz = value.tzinfo
    if tz is not _UTC:
        value = value.replace(tzinfo=_UTC) if tz is None else value.astimezone(_UTC)
    # isoformat is faster than strftime, and writes years before 1000 with four digits.
    return value.isoformat(timespec="milliseconds")[:-6] + "Z"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class _Converter(cattrs.Converter):
    """The SDK's converter; build one with :func:`_make_converter`."""

    lenient: bool
    tagged_unions: dict[frozenset[type], TaggedUnion]
    older_shapes: dict[Any, OlderShape]
    """Keyed by class, or by the frozenset of members for a union."""


_reported: set[tuple[str, str]] = set()
_GAP = "required by the spec but missing from a response; decoded as UNSET"


def _report_gap(cls: type, wire: str, what: str) -> None:
    """Log a tolerated gap once per model and field (debug level: the response still decoded)."""
    key = (cls.__name__, wire)
    if key in _reported:
        return
    _reported.add(key)
    logger.debug("%s.%s: %s (logged once per model and field)", cls.__name__, wire, what)


def _make_converter(*, lenient: bool, compiled: bool = True) -> _Converter:
    """A converter; ``compiled=False`` decodes every model with the precise slow path only
    (what the compiled decoders must agree with)."""
    conv = _Converter(detailed_validation=False)
    conv.lenient = lenient
    conv.tagged_unions = {}
    conv.older_shapes = {}

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
    conv.register_structure_hook_func(lambda tp: tp is Any, structure_any)
    conv.register_unstructure_hook(_dt.datetime, format_datetime)

    conv.register_structure_hook_factory(_is_list, lambda t: _list_hook(conv, t))
    conv.register_structure_hook_factory(_is_dict, lambda t: _dict_hook(conv, t))
    conv.register_structure_hook_factory(_is_literal, _literal_hook)
    conv.register_structure_hook_factory(_is_union, lambda t: _union_hook(conv, t))
    if compiled:
        conv.register_structure_hook_factory(attrs.has, lambda cls: _attrs_structure_hook(conv, cls))
    else:
        conv.register_structure_hook_factory(attrs.has, lambda cls: _attrs_structure_slow(conv, cls))
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


_row_decoders: dict[Callable[[Any, Any], Any], Callable[[list[Any]], list[Any]]] = {}
"""Per compiled model hook, a decoder of a whole list of such objects (see _attrs_structure_hook)."""


def _list_hook(conv: _Converter, tp: Any) -> Callable[[Any, Any], list[Any]]:
    (item_type,) = typing.get_args(tp) or (Any,)
    item_hook = conv.get_structure_hook(item_type)
    rows = _row_decoders.get(item_hook)

    exact = item_type if item_type in (str, bool, int) else None

    def structure_list(value: Any, _: Any) -> list[Any]:
        if type(value) is not list:
            raise DecodeError(f"expected an array, got {_kind(value)}")
        if exact is not None:
            # Strings, booleans, integers: a type check per item, no call (a copy, so that the
            # model never shares a list with the caller's data).
            for item in value:
                if type(item) is not exact:
                    break
            else:
                return list(value)
        if rows is not None:
            try:
                return rows(value)
            except DecodeError:
                pass  # decoded again one by one below, to name the failing item
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
        return _tagged_union_hook(conv, tagged, nullable, members, conv.older_shapes.get(classes))
    return _untagged_union_hook(conv, members, nullable)


def _tagged_union_hook(
    conv: _Converter, tagged: TaggedUnion, nullable: bool, members: list[Any], older: OlderShape | None
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
        if older is not None and older.applies(value):
            value = older.normalise(value)
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
    """No default: both converters need it."""
    spec_required: bool
    """The spec requires it but the type admits UNSET: only the strict converter needs it."""

    @property
    def admits_unset(self) -> bool:
        return _is_union(self.type) and UnsetType in typing.get_args(self.type)


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
        plans.append(
            _FieldPlan(
                field.name,
                wire,
                aliases,
                hints[field.name],
                field.default is attrs.NOTHING,
                bool(field.metadata.get(SPEC_REQUIRED)),
            )
        )
    return plans, extra_name


def _attrs_structure_hook(conv: _Converter, cls: type) -> Callable[[Any, Any], Any]:
    """A decoder specialised for ``cls``.

    JSON objects of one type nearly always arrive with the same keys in the same order, so the
    decoder compiles one small function per key sequence it meets ("shape") that reads exactly
    those keys, checks their types inline and builds the instance. Anything unusual (a wrong
    type, a missing required field) falls back to the precise slow path, which names the field.
    """
    slow = _attrs_structure_slow(conv, cls)
    plans, extra_name = _plans(cls)
    older = conv.older_shapes.get(cls)
    by_key: dict[str, tuple[int, _FieldPlan]] = {}
    for i, plan in enumerate(plans):
        for key in (plan.wire, *plan.aliases):
            by_key.setdefault(key, (i, plan))
    required = {plan.name for plan in plans if plan.required or (plan.spec_required and not conv.lenient)}
    gaps = [plan for plan in plans if plan.spec_required and conv.lenient]
    shapes: dict[frozenset[str], Callable[[dict[str, Any]], Any]] = {}
    env: dict[str, Any] = {
        "cls": cls,
        "bad": _bad,
        "dt": _datetime_or_bad,
        "new": object.__new__,
        "iso": _fromisoformat,
        "gap": lambda wire: _report_gap(cls, wire, _GAP),
    }
    twin = _unfrozen_twin(cls)
    env["twin"] = twin

    defaults: dict[str, str] = {}
    for field in attrs.fields(cls):
        if isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
            env[f"f_{field.name}"] = field.default.factory
            # A literal builds a new dict without a call.
            is_dict = field.default.factory is dict and not field.default.takes_self
            defaults[field.name] = "{}" if is_dict else f"f_{field.name}()"
        elif field.default is not attrs.NOTHING:
            env[f"d_{field.name}"] = field.default
            defaults[field.name] = f"d_{field.name}"

    def compile_shape(keys: tuple[str, ...]) -> Callable[[dict[str, Any]], Any]:
        values: dict[str, str] = {}
        extra: list[str] = []
        skipped: list[str] = []
        for key in keys:
            entry = by_key.get(key)
            if entry is None:
                extra.append(f"{key!r}: d[{key!r}]")
                continue
            i, plan = entry
            if plan.name in values or (key != plan.wire and plan.wire in keys):
                # An alias next to the canonical key: the canonical one wins. The shape still
                # reads it, so that a dict with another key in its place is not taken as this shape.
                skipped.append(key)
                continue
            values[plan.name] = _expression(conv, env, i, f"d[{key!r}]", plan.type)
        if not required <= values.keys():
            return lambda d: slow(d, None)
        missing = [plan.wire for plan in gaps if plan.name not in values]
        if extra and extra_name is not None:
            values[extra_name] = f"{{{', '.join(extra)}}}"
        # The key count first: a dict with as many keys in which the shape finds every key it
        # reads has exactly this key set (anything else raises KeyError: not this shape).
        lines = [
            "def shape(d):",
            f"    if len(d) != {len(keys)}: raise KeyError",
            *(f"    d[{key!r}]" for key in skipped),
        ]
        # A gap is reported on use, not when the shape is compiled: the report is once per
        # model and field for the process, and shapes are cached per converter.
        lines += [f"    gap({wire!r})" for wire in missing]
        if twin is None:
            # Built by its own __init__, so that its validators, converters and hooks run.
            args = [f"{f.name}={values[f.name]}" for f in attrs.fields(cls) if f.name in values]
            lines.append(f"    return cls({', '.join(args)})")
        else:
            # Every generated model (see _unfrozen_twin): filled as the twin, with plain
            # attribute stores, then handed over to the model's class. A value that fails its
            # check raises before the handover, so no half-built model is ever seen.
            lines.append("    o = new(twin)")
            for field in attrs.fields(cls):
                lines.append(f"    o.{field.name} = {values.get(field.name, defaults.get(field.name))}")
            lines.append("    o.__class__ = cls")
            lines.append("    return o")
        namespace: dict[str, Any] = {}
        exec(compile("\n".join(lines), f"<flireo decoder {cls.__name__}>", "exec"), env, namespace)  # noqa: S102
        return namespace["shape"]  # type: ignore[no-any-return]

    # The last shape used, tried first: it checks that a dict has exactly its keys, so no key
    # set needs to be built in the common case.
    last: list[Any] = [_no_shape]

    def structure(d: Any, _: Any) -> Any:
        if type(d) is not dict:
            return slow(d, _)
        if older is not None and older.applies(d):
            d = older.normalise(d)
        try:
            return last[0](d)
        except KeyError:
            pass
        except ValueError:  # DecodeError, or a date-time that fromisoformat refused
            return slow(d, _)
        keys = frozenset(d)
        shape = shapes.get(keys)
        if shape is None:
            shape = compile_shape(tuple(d))
            if len(shapes) < 64:
                shapes[keys] = shape
        last[0] = shape
        try:
            return shape(d)
        except ValueError:
            return slow(d, _)

    def structure_rows(items: list[Any]) -> list[Any]:
        # A page of objects of one shape goes through the last shape in one comprehension. A
        # row that does not fit it (another key set, a bad value, not a dict) sends the whole
        # page the row-by-row way, where each row finds its shape or its precise error.
        if older is None:
            shape = last[0]
            try:
                return [shape(d) for d in items]
            except (KeyError, ValueError, TypeError):
                pass
        return [structure(d, None) for d in items]

    _row_decoders[structure] = structure_rows
    return structure


def _unfrozen_twin(cls: type) -> type | None:
    """A class with the same slots as ``cls`` but no frozen ``__setattr__``, whose instances
    may become instances of ``cls`` by assigning ``__class__``; ``None`` when there is none.

    Why: a frozen attrs class stores each field through ``object.__setattr__`` (its own
    ``__setattr__`` refuses), a function call per field. Filling the twin with plain attribute
    stores and then switching the class builds the same object (same slots, same values, same
    type) in about half the time, which is most of the decoder's own cost on a page of usage
    logs. Python allows the switch only between classes of identical layout, so the twin
    derives from the same base and declares the same slots; the weak-reference slot lives in
    :class:`~flireo_async.models.Model` for that reason (a class that declares its own after
    its fields has no compatible twin before Python 3.12).

    Only for classes whose ``__init__`` does nothing but store the values, as every generated
    model: no validators, converters, pre/post-init hooks or cached hash, every field a slot of
    the class itself. Any other class is built by its ``__init__``. The switch is tried once
    with a marker in every slot, so a Python that lays out or refuses it differently falls back
    too.
    """
    if any(hasattr(cls, hook) for hook in ("__attrs_pre_init__", "__attrs_post_init__", "__attrs_init__")):
        return None
    own_slots = cls.__dict__.get("__slots__", ())
    if "_attrs_cached_hash" in own_slots:
        return None
    fields = attrs.fields(cls)
    for field in fields:
        if field.validator is not None or field.converter is not None:
            return None
        if type(cls.__dict__.get(field.name)) is not types.MemberDescriptorType:
            return None  # not slotted, or a slot inherited from a base class
    namespace: dict[str, Any] = {"__slots__": tuple(own_slots)}
    if len(cls.__bases__) != 1:
        return None
    (base,) = cls.__bases__
    if any("__setattr__" in ancestor.__dict__ for ancestor in base.__mro__[:-1]):
        namespace["__setattr__"] = object.__setattr__  # a frozen base refuses plain stores
    try:
        twin = type(f"_{cls.__name__}Twin", (base,), namespace)
        probe: Any = object.__new__(twin)
        markers = [object() for _ in fields]
        for field, marker in zip(fields, markers, strict=True):
            object.__setattr__(probe, field.name, marker)
        probe.__class__ = cls
    except TypeError:
        return None
    if any(getattr(probe, field.name) is not marker for field, marker in zip(fields, markers, strict=True)):
        return None
    return twin


def _no_shape(d: Any) -> Any:
    raise KeyError


def _bad() -> Any:
    raise DecodeError("unexpected value")


def _datetime_or_bad(value: Any) -> _dt.datetime:
    if type(value) is str:
        try:
            return parse_datetime(value)
        except ValueError:
            pass
    raise DecodeError("not a date-time")


_INLINE_TYPES = {str: "str", bool: "bool", int: "int", float: "float"}


def _expression(conv: _Converter, env: dict[str, Any], i: int, source: str, tp: Any) -> str:
    """A Python expression that decodes ``source`` as ``tp`` or raises DecodeError."""
    members = [m for m in typing.get_args(tp) if m is not UnsetType] if _is_union(tp) else [tp]
    nullable = type(None) in members
    members = [m for m in members if m is not type(None)]
    if len(members) == 1:
        (only,) = members
        if only in _INLINE_TYPES:
            # `v` is bound by the walrus in the condition, which is evaluated first.
            check = (
                f"(v := {source}) is None or type(v) is {_INLINE_TYPES[only]}"
                if nullable
                else (f"type(v := {source}) is {_INLINE_TYPES[only]}")
            )
            if only is float:  # JSON has one number type: an integer is a valid float
                return f"(v if {check} else float(v) if type(v) is int else bad())"
            return f"(v if {check} else bad())"
        if only is Any:
            return source
        if only is _dt.datetime:
            if _NATIVE_Z:
                # The common case inline: a string fromisoformat reads, with a time zone. Any
                # other value goes to dt(), and a string fromisoformat refuses raises
                # ValueError, which sends the object to the precise slow path.
                if nullable:
                    return f"(None if (v := {source}) is None else p if type(v) is str and (p := iso(v)).tzinfo is not None else dt(v))"
                return f"(p if type(v := {source}) is str and (p := iso(v)).tzinfo is not None else dt(v))"
            return f"(v if (v := {source}) is None else dt(v))" if nullable else f"dt({source})"
        env[f"h{i}"] = conv.get_structure_hook(only)
        env[f"t{i}"] = only
        if nullable:
            return f"(None if (v := {source}) is None else h{i}(v, t{i}))"
        return f"h{i}({source}, t{i})"
    env[f"h{i}"] = conv.get_structure_hook(tp)
    env[f"t{i}"] = tp
    return f"h{i}({source}, t{i})"


def _attrs_structure_slow(conv: _Converter, cls: type) -> Callable[[Any, Any], Any]:
    """The precise decoder: names the failing field; in lenient mode it also degrades gaps."""
    plans, extra_name = _plans(cls)
    lenient = conv.lenient
    steps = [
        (
            p.name,
            p.wire,
            p.aliases,
            conv.get_structure_hook(p.type),
            p.type,
            p.required or (p.spec_required and not lenient),
            p.spec_required and lenient,
            # Only an UNSET-admitting field can stand in for a value that lacks a required part,
            # and only in lenient mode; there must be an `extra` to keep the raw value in.
            lenient and p.admits_unset and extra_name is not None,
        )
        for p in plans
    ]
    known = {p.wire for p in plans} | {alias for p in plans for alias in p.aliases}

    def structure_attrs(value: Any, _: Any) -> Any:
        if type(value) is not dict:
            raise DecodeError(f"expected an object, got {_kind(value)}")
        kwargs: dict[str, Any] = {}
        kept: dict[str, Any] = {}
        for name, wire, aliases, hook, tp, required, gap, degrade in steps:
            key = wire
            if wire not in value:
                for alias in aliases:
                    if alias in value:
                        key = alias
                        break
                else:
                    if required:
                        exc = DecodeError("required field is missing", missing=True)
                        exc.parts.append(wire)
                        raise exc
                    if gap:
                        _report_gap(cls, wire, _GAP)
                    continue
            try:
                kwargs[name] = hook(value[key], tp)
            except DecodeError as exc:
                if degrade and exc.missing:
                    kept[key] = value[key]
                    _report_gap(cls, wire, f"{exc}; decoded as UNSET, the value kept in extra[{key!r}]")
                    continue
                exc.parts.insert(0, wire)
                raise
        if extra_name is not None and (kept or len(value) > len(kwargs)):
            extra = {k: v for k, v in value.items() if k not in known}
            extra.update(kept)
            if extra:
                kwargs[extra_name] = extra
        return cls(**kwargs)

    return structure_attrs


def _attrs_unstructure_hook(conv: _Converter, cls: type) -> Callable[[Any], dict[str, Any]]:
    """An encoder compiled for ``cls``: UNSET fields are left out, ``None`` stays null,
    scalars are copied, date-times formatted, and anything else goes back to the converter."""
    plans, extra_name = _plans(cls)
    env: dict[str, Any] = {
        "UNSET": UNSET,
        "u": conv.unstructure,
        "fmt": format_datetime,
        "dt": _dt.datetime,
        "scalar": (str, int, float, bool),
    }
    lines = ["def unstructure(o):", "    out = {}"]
    for plan in plans:
        members = set(typing.get_args(plan.type)) if _is_union(plan.type) else {plan.type}
        members -= {UnsetType, type(None)}
        if members <= {str, int, float, bool}:
            value = "v"
        elif members == {_dt.datetime}:
            value = "v if v is None else fmt(v) if type(v) is dt else u(v)"
        else:
            value = "v if v is None or type(v) in scalar else u(v)"
        lines += [f"    v = o.{plan.name}", "    if v is not UNSET:", f"        out[{plan.wire!r}] = {value}"]
    if extra_name is not None:
        lines += [
            f"    if o.{extra_name}:",
            f"        for k, x in o.{extra_name}.items():",
            "            out.setdefault(k, x)",
        ]
    lines.append("    return out")
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(lines), f"<flireo encoder {cls.__name__}>", "exec"), env, namespace)  # noqa: S102
    return namespace["unstructure"]  # type: ignore[no-any-return]


converter = _make_converter(lenient=False)
"""The strict converter: request bodies, webhooks and ``strict_responses=True``."""
lenient_converter = _make_converter(lenient=True)
"""The lenient converter: responses by default."""


@typing.overload
def decode(value: Any, tp: type[T], *, strict: bool = True) -> T: ...
@typing.overload
def decode(value: Any, tp: Any, *, strict: bool = True) -> Any: ...
def decode(value: Any, tp: Any, *, strict: bool = True) -> Any:
    """Decode parsed JSON into ``tp``; raises :class:`DecodeError` naming the bad field.

    ``strict=False`` tolerates missing fields as described in the module docstring.
    """
    conv = converter if strict else lenient_converter
    return conv.structure(value, tp)


def decoder_of(tp: Any, *, strict: bool = True) -> Callable[[Any, Any], Any]:
    """The decoder of one value of ``tp``, called as ``hook(value, tp)``: the same as
    :func:`decode` without looking the type up for every value, for decoding many one by one."""
    conv = converter if strict else lenient_converter
    return conv.get_structure_hook(tp)


def encode(value: Any) -> Any:
    """Encode a model (or a list/dict of them) into JSON-ready Python values."""
    return converter.unstructure(value)


def register_tagged_unions(unions: list[TaggedUnion]) -> None:
    """Register the spec's discriminated unions (called once with the generated table)."""
    for union in unions:
        members = set(union.mapping.values())
        if union.fallback is not None:
            members.add(union.fallback)
        for conv in (converter, lenient_converter):
            conv.tagged_unions[frozenset(members)] = union


def register_older_shapes(shapes: list[tuple[Any, OlderShape]]) -> None:
    """Register the older documented shapes (called once with the generated table)."""
    for target, shape in shapes:
        key = frozenset(typing.get_args(target)) if _is_union(target) else target
        for conv in (converter, lenient_converter):
            conv.older_shapes[key] = shape
