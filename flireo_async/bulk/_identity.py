"""Who a lead is: its identity, taken from its content or from a key the caller gives.

A launch store matches leads by identity, never by their position in the input, so that an
input that was re-sorted, extended or trimmed between two runs dials nobody twice.

- Content identity: a hash of the request as it would be sent, with the destination
  normalised (whitespace and visual separators removed) and the deprecated field names folded
  into the current ones (``agent_id`` → ``assistant_id``, ...). Two requests that dial the same
  number with the same agent, caller ID, overrides, variables and metadata are the same lead.
- Key identity: ``key:<value>`` for a key the caller gives (for example a CRM lead id). Then
  only the key counts: an edited request with the same key is still the same lead.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "E164",
    "normalize_destination",
    "content_identity",
    "key_identity",
    "legacy_digest",
]

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
"""An E.164 number: ``+``, a country code that does not start with 0, 7 to 15 digits in all."""

_NOISE = re.compile(r"[\s\-.()/]+")
_DEPRECATED = {"agent_id": "assistant_id", "agent": "assistant", "agent_config": "assistant_override"}
_MAX_KEY = 200


def normalize_destination(value: str) -> str:
    """The number with whitespace and the separators people type (``- . ( ) /``) removed.

    ``" +31 6-1234 5678 "`` becomes ``"+31612345678"``. Nothing else changes: a number that is
    not E.164 stays invalid (see :data:`E164`).
    """
    return _NOISE.sub("", value)


def _canonical(payload: Any) -> bytes:
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode()


def content_identity(payload: Mapping[str, Any]) -> str:
    """The identity of an outbound-call request given as its wire JSON (a dict).

    32 hex digits of SHA-256 over the canonical JSON, after normalising the destination and
    folding deprecated names into current ones.
    """
    canonical: dict[str, Any] = {}
    for name, value in payload.items():
        canonical[_DEPRECATED.get(name, name)] = value
    destination = canonical.get("destination")
    if isinstance(destination, str):
        canonical["destination"] = normalize_destination(destination)
    return hashlib.sha256(_canonical(canonical)).hexdigest()[:32]


def key_identity(key: object) -> str:
    """The identity for a caller-given key: ``key:<value>`` (hashed when over 200 characters).

    Raises ``ValueError`` for an empty key or one that is not a string or an integer.
    """
    if isinstance(key, bool) or not isinstance(key, (str, int)):
        raise ValueError(f"a lead key must be a string or an integer, got {type(key).__name__}")
    text = str(key).strip()
    if not text:
        raise ValueError("a lead key must not be empty")
    if len(text) > _MAX_KEY or any(ch < " " for ch in text):
        return "key-sha256:" + hashlib.sha256(text.encode()).hexdigest()[:32]
    return "key:" + text


def legacy_digest(payload: Any) -> str:
    """The content hash journals of flireo-async 0.1 recorded (``"<index>:<this>"`` keys).

    Used only to read such journals: a request whose digest matches a 0.1 record is that lead.
    """
    return hashlib.sha256(_canonical(payload)).digest()[:8].hex()
