"""Small shared types: the UNSET sentinel that keeps "absent" apart from JSON null."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final, Literal, TypeVar, Union

import attrs

__all__ = ["UNSET", "UnsetType", "Unset", "TaggedUnion", "OlderShape"]


class UnsetType(enum.Enum):
    """Type of :data:`UNSET`: a field that is absent from the JSON object.

    An enum with one member, so that ``if value is not UNSET:`` narrows the type for mypy.
    It is falsy, so ``if agent.business_name:`` reads naturally.
    """

    UNSET = "UNSET"

    def __bool__(self) -> Literal[False]:
        return False

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = UnsetType.UNSET
"""The field is absent: it is left out of request bodies and was missing from a response.

``None`` is different: it is sent and received as JSON ``null`` (a PATCH uses it to clear a field).
"""

_T = TypeVar("_T")
Unset = Union[_T, UnsetType]
"""``Unset[str]`` is ``str | UnsetType``: a value that may be absent."""


WIRE = "wire"
"""Field metadata key: the JSON name of the field."""
ALIASES = "aliases"
"""Field metadata key: other JSON names accepted when decoding (never sent)."""
EXTRA = "extra"
"""Field metadata key: marks the mapping that keeps unknown JSON keys."""
SPEC_REQUIRED = "required"
"""Field metadata key: the spec requires the field, but the type admits UNSET so that lenient
decoding can report a server that leaves it out; strict decoding enforces it."""


@attrs.frozen
class TaggedUnion:
    """How to pick the member of a union: by the value of ``discriminator`` in the object.

    ``fallback`` takes objects whose tag is unknown (open unions such as webhook events).
    """

    discriminator: str
    mapping: Mapping[str, type]
    fallback: type | None = None


@attrs.frozen
class OlderShape:
    """How to turn an older documented shape of an object into the current one before decoding.

    It applies only to objects without ``when_missing``. Then ``rename`` moves keys to their
    current names, the ``nest_keys`` present are moved into a new object under ``nest_into``,
    and each ``derive`` entry ``(field, source, values)`` sets ``field`` from the value of
    ``source`` (looked up in the ``values`` pairs). Keys already present are never overwritten.
    """

    when_missing: str
    rename: Mapping[str, str] = attrs.field(factory=dict)
    nest_into: str | None = None
    nest_keys: tuple[str, ...] = ()
    derive: tuple[tuple[str, str, tuple[tuple[object, object], ...]], ...] = ()

    def applies(self, data: Mapping[str, object]) -> bool:
        """Whether ``data`` is in the older shape."""
        return self.when_missing not in data

    def normalise(self, data: Mapping[str, object]) -> dict[str, object]:
        """A copy of ``data`` in the current shape (``data`` itself is left alone)."""
        out = dict(data)
        for old, new in self.rename.items():
            if old in out and new not in out:
                out[new] = out.pop(old)
        if self.nest_into is not None and self.nest_into not in out:
            out[self.nest_into] = {key: out.pop(key) for key in self.nest_keys if key in out}
        for field, source, values in self.derive:
            if field not in out and source in out:
                for value, derived in values:
                    # `is` for booleans: 1 == True, but an integer is not the older boolean.
                    if type(out[source]) is type(value) and out[source] == value:
                        out[field] = derived
                        break
        return out


def redacted_repr(value: object) -> str:
    """``repr`` for secret fields: shows whether a value is set, never the value."""
    if value is None or isinstance(value, UnsetType):
        return repr(value)
    return "'***'"


def key_fingerprint(api_key: str) -> str:
    """A stable name for an API key that does not reveal it (for shared state such as Redis).

    The first 20 hex digits of a salted SHA-256: enough to keep keys apart, useless for
    recovering the key.
    """
    import hashlib

    return hashlib.sha256(b"flireo-async key:" + api_key.encode()).hexdigest()[:20]
