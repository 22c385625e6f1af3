"""The fake's in-memory store, and the records it keeps for test assertions.

Resources are stored as the JSON dicts the API would send (wire names), so a test can compare
``fake.state.agents[agent.id]["name"]`` directly with what it sent.
"""

from __future__ import annotations

import random
import string
import uuid
from dataclasses import dataclass, field
from typing import Any

from ._spec import load_spec

SPEC = load_spec()

__all__ = [
    "FakeState",
    "IdFactory",
    "RecordedRequest",
    "WebhookDelivery",
    "BYOK_PROVIDERS",
    "REALTIME_LLM_PROVIDERS",
]

JSON = dict[str, Any]

BYOK_PROVIDERS: tuple[str, ...] = tuple(
    SPEC["components"]["schemas"]["ByokKeyRequest"]["properties"]["provider"]["x-known-values"]
)
"""Providers whose keys ``POST /byok`` accepts: the spec's known values, so the two cannot drift."""

REALTIME_LLM_PROVIDERS = frozenset({"google_realtime", "xai_realtime", "openai_live"})
"""Speech-to-speech LLM providers: they need no STT/TTS configuration."""

_ALPHANUM = string.ascii_letters + string.digits


@dataclass
class RecordedRequest:
    """One HTTP request the fake received, with the status it answered.

    ``path`` is relative to the API base (``/calls/outbound``) and percent-decoded; ``body`` is
    the parsed JSON body (the raw text when it was not JSON, ``None`` when empty). ``status`` is
    0 while the request is still being handled; for a dropped connection it is the status the
    handler produced before the connection was cut (see ``fault``).
    """

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int
    at: float
    operation_id: str | None = None
    fault: str | None = None
    """The injected fault, if any: ``latency``, ``status_429``, ``status_5xx``,
    ``malformed_json`` or ``drop_after_processing``."""


@dataclass
class WebhookDelivery:
    """One webhook the fake tried to deliver."""

    url: str
    event: str
    call_id: str
    body: bytes
    headers: dict[str, str]
    status: int | None = None
    """The receiver's HTTP status; ``None`` when the delivery failed (see ``error``)."""
    error: str | None = None
    """Why no status was received: the receiver did not answer within the deadline, or the
    connection failed."""
    at: float = 0.0
    """Wall-clock Unix time at which the delivery was sent."""
    timed_out: bool = False
    """Whether the receiver did not answer within the deadline (then ``error`` says which)."""
    attempt: int = 1
    """1 for a first delivery, 2 for its first redelivery (same body, same headers), ..."""
    response: bytes | None = None
    """The body the receiver answered (at most ``MAX_REPLY_BYTES``; ``None`` without an answer)."""


class IdFactory:
    """Seeded ids: UUID4 strings and the short random suffixes of call ids."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def token(self, length: int = 8) -> str:
        return "".join(self._rng.choice(_ALPHANUM) for _ in range(length))


def _voices() -> list[JSON]:
    return [
        {
            "id": "21m00Tcm4TlvDq8ikWAM",
            "name": "Rachel",
            "language": "en",
            "description": {"en": "Rachel (American English)", "nl": "Rachel (Amerikaans Engels)"},
        },
        {
            "id": "nl_NL-pim-medium",
            "name": "Pim",
            "language": "nl",
            "description": {"en": "Pim (Dutch)", "nl": "Pim (Nederlands)"},
        },
        {
            "id": "nl_NL-ronnie-medium",
            "name": "Ronnie",
            "language": "nl",
            "description": {"en": "Ronnie (Dutch)", "nl": "Ronnie (Nederlands)"},
        },
        {
            "id": "en_GB-alba-medium",
            "name": "Alba",
            "language": "en",
            "description": {"en": "Alba (British English)"},
        },
    ]


def _byok_catalog() -> list[JSON]:
    return [
        {
            "id": "deepgram",
            "name": "Deepgram",
            "category": "stt",
            "docsUrl": "https://developers.deepgram.com/",
            "models": [{"id": "nova-3-general", "name": "Nova 3 General", "default": True}],
        },
        {
            "id": "gladia",
            "name": "Gladia",
            "category": "stt",
            "docsUrl": "https://docs.gladia.io/",
            "models": [{"id": "solaria-1", "name": "Solaria", "default": True}],
        },
        {
            "id": "openai",
            "name": "OpenAI",
            "category": "llm",
            "docsUrl": "https://platform.openai.com/docs",
            "models": [
                {"id": "gpt-4o-mini", "name": "GPT-4o Mini", "default": True},
                {"id": "gpt-4o", "name": "GPT-4o", "default": False},
            ],
        },
        {
            "id": "mistral",
            "name": "Mistral",
            "category": "llm",
            "docsUrl": "https://docs.mistral.ai/",
            "models": [{"id": "mistral-small-latest", "name": "Mistral Small", "default": True}],
        },
        {
            "id": "google",
            "name": "Google",
            "category": "llm",
            "docsUrl": "https://ai.google.dev/",
            "models": [{"id": "gemini-2.0-flash", "name": "Gemini 2.0 Flash", "default": True}],
        },
        {
            "id": "elevenlabs",
            "name": "ElevenLabs",
            "category": "tts",
            "docsUrl": "https://elevenlabs.io/docs",
            "models": [
                {"id": "eleven_flash_v2_5", "name": "Flash v2.5", "default": True},
                {"id": "eleven_multilingual_v2", "name": "Multilingual v2", "default": False},
            ],
        },
        {"id": "inworld", "name": "Inworld", "category": "tts", "docsUrl": "https://docs.inworld.ai/"},
        {"id": "xai", "name": "xAI", "category": "llm", "docsUrl": "https://docs.x.ai/"},
        {"id": "resend", "name": "Resend", "category": "email", "docsUrl": "https://resend.com/docs"},
    ]


@dataclass
class FakeState:
    """Everything the fake server stores, as API-shaped JSON dicts keyed by id.

    Dicts keep insertion order, which is creation order. Tests may read and modify the state
    directly (for example ``fake.state.organization["minutes_balance"] = 0`` to provoke a 402).
    """

    organization: JSON
    agents: dict[str, JSON] = field(default_factory=dict)
    tool_templates: dict[str, JSON] = field(default_factory=dict)
    numbers: dict[str, JSON] = field(default_factory=dict)
    sip_trunks: dict[str, JSON] = field(default_factory=dict)
    analysis_templates: dict[str, JSON] = field(default_factory=dict)
    campaigns: dict[str, JSON] = field(default_factory=dict)
    leads: dict[str, JSON] = field(default_factory=dict)
    """Every campaign lead by lead id (``lead["campaign_id"]`` says which campaign)."""
    calls: dict[str, JSON] = field(default_factory=dict)
    usage_logs: list[JSON] = field(default_factory=list)
    byok_keys: dict[str, str] = field(default_factory=dict)
    """Provider name → vault secret id, for the providers that have a key."""
    domain: JSON | None = None
    resend_domains: list[JSON] = field(default_factory=list)
    """Domains the simulated Resend account holds (what ``GET /domains/sync`` lists)."""
    children: list[JSON] = field(default_factory=list)
    """Child organizations, shown by ``GET /organizations?include_children=true``."""
    voices: list[JSON] = field(default_factory=_voices)
    byok_catalog: list[JSON] = field(default_factory=_byok_catalog)
    dialed: list[str] = field(default_factory=list)
    """Destinations of every outbound call placed (API and campaign calls), in order."""

    def leads_of(self, campaign_id: str) -> list[JSON]:
        """The leads of one campaign, oldest first."""
        return [lead for lead in self.leads.values() if lead["campaign_id"] == campaign_id]
