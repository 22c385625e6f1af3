"""Small shared types: the UNSET sentinel that keeps "absent" apart from JSON null."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final, Literal, TypeVar, Union

import attrs

__all__ = ["UNSET", "UnsetType", "Unset", "TaggedUnion"]


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


@attrs.frozen
class TaggedUnion:
    """How to pick the member of a union: by the value of ``discriminator`` in the object.

    ``fallback`` takes objects whose tag is unknown (open unions such as webhook events).
    """

    discriminator: str
    mapping: Mapping[str, type]
    fallback: type | None = None


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
