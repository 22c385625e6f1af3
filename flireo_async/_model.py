"""The base of every generated model: public serialisation and a concise repr.

``to_dict`` / ``to_json`` give the JSON the API speaks (wire names, absent fields left out,
date-times in ISO 8601 UTC), and ``from_dict`` reads such JSON back as leniently as a response
is decoded, so that a model stored as JSON (a cache, a queue, a test fixture) comes back as the
same model.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

import attrs

from ._convert import DecodeError, decode, encode
from ._errors import RequestValidationError
from ._json import non_finite_path
from ._types import UnsetType

__all__ = ["Model"]

M = TypeVar("M", bound="Model")


_ReprPlan = tuple[tuple[str, Callable[[Any], str]], ...]
_repr_plans: dict[type, _ReprPlan] = {}


def _repr_plan(cls: type) -> _ReprPlan:
    """(name, how to show it) for every field of ``cls`` shown in its repr."""
    known = _repr_plans.get(cls)
    if known is not None:
        return known
    plan = []
    for field in attrs.fields(cls):
        if field.repr is False:
            continue
        # attrs keeps a field's own repr (the redacted one of secret fields) in `field.repr`.
        shown = field.repr if callable(field.repr) else repr
        plan.append((field.name, shown))
    _repr_plans[cls] = tuple(plan)
    return _repr_plans[cls]


class Model:
    """Base class of the API models (``flireo_async.models``).

    - ``model.to_dict()``: the JSON object as the API sends and receives it: wire names, absent
      (``UNSET``) fields left out, ``None`` kept as ``null``, date-times as ISO 8601 UTC text
      (``2026-01-07T10:00:00.000Z``), nested models as objects and unknown keys the model kept
      in ``extra`` put back. Secret fields (webhook secrets) are included, as they would be
      sent: only the repr hides them.
    - ``model.to_json(indent=None)``: the same, as JSON text.
    - ``Model.from_dict(data)``: the model from such a dict, decoded as leniently as a response
      (unknown keys kept in ``extra``, older spellings read); a value of the wrong type raises
      :class:`~flireo_async.RequestValidationError` naming the field.

    ``repr()`` shows only the fields that are present, and secrets as ``'***'``.
    """

    __slots__ = ("__weakref__",)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this model, ready for ``json.dumps``."""
        return cast("dict[str, Any]", encode(self))

    def to_json(self, *, indent: int | None = None) -> str:
        """This model as JSON text (UTF-8 characters kept as they are)."""
        data = self.to_dict()
        try:
            return json.dumps(data, indent=indent, ensure_ascii=False, allow_nan=False)
        except ValueError:
            where = non_finite_path(data)
            if where is None:
                raise
        raise RequestValidationError(
            where,
            f"must be a finite number: NaN and Infinity are not valid JSON (in {type(self).__name__}.to_json)",
        )

    @classmethod
    def from_dict(cls: type[M], data: Mapping[str, Any]) -> M:
        """The model from a dict of wire names (for example one made by :meth:`to_dict`)."""
        if not isinstance(data, Mapping):
            raise RequestValidationError(
                "", f"{cls.__name__}.from_dict expects a mapping, got {type(data).__name__}"
            )
        try:
            return decode(data if type(data) is dict else dict(data), cls, strict=False)
        except DecodeError as exc:
            raise RequestValidationError(exc.path, f"{exc.problem} (in {cls.__name__}.from_dict)") from None
        except RecursionError:
            raise RequestValidationError("", f"{cls.__name__}.from_dict: nested too deeply") from None

    def __repr__(self) -> str:
        shown = [
            f"{name}={show(value)}"
            for name, show in _repr_plan(type(self))
            if not isinstance(value := getattr(self, name), UnsetType)
        ]
        return f"{type(self).__qualname__}({', '.join(shown)})"
