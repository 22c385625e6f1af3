"""Verifying a webhook delivery: headers, timestamp window, HMAC signature, then the payload.

Order of the checks, and why:

1. a secret must be configured (or the caller explicitly opted out of signatures);
2. ``X-Webhook-Timestamp`` and ``X-Webhook-Signature`` must be present, the timestamp made of
   decimal digits;
3. the signature is compared in constant time over the exact bytes received;
4. only then the timestamp window is checked, so that ``STALE_TIMESTAMP`` is reported for
   authentic but old (or future) deliveries and a forged request always reads ``BAD_SIGNATURE``;
5. the body is parsed as UTF-8 JSON and decoded into the typed event.

Nothing derived from the secret (the expected signature) is ever put in a message or a log.
Everything :func:`verify` raises is a :class:`~flireo_async.FlireoError`: a delivery that fails
a check raises :class:`WebhookVerificationError` (never a parser's own exception, whatever the
body or headers hold), and invalid arguments raise :class:`WebhookUsageError`.
"""

from __future__ import annotations

import enum
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from .._convert import DecodeError, decode
from .._errors import FlireoError
from ..models import WebhookMessage, WebhookPayload
from ._signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, compute_signature

__all__ = [
    "DEFAULT_TOLERANCE",
    "VerificationFailure",
    "WebhookUsageError",
    "WebhookVerificationError",
    "check_signature",
    "get_header",
    "parse_message",
    "verify",
]

DEFAULT_TOLERANCE = 300.0
"""Seconds a delivery's timestamp may differ from the local clock, in either direction."""

_SIGNATURE_PREFIX = "sha256="
_MAX_TIMESTAMP_DIGITS = 12
"""Unix seconds stay below 10**12 until the year 33658; longer values are not a time we can
compare (and parsing thousands of digits is refused by Python itself)."""


def timestamp_seconds(value: str | None) -> int | None:
    """``X-Webhook-Timestamp`` as an integer, or ``None`` when it is not plain ASCII decimal
    digits of a plausible length."""
    if not value or not (value.isascii() and value.isdigit()):
        return None
    if len(value.lstrip("0")) > _MAX_TIMESTAMP_DIGITS:
        return None
    return int(value)


class VerificationFailure(str, enum.Enum):
    """Why a webhook delivery was rejected (``WebhookVerificationError.reason``).

    A ``str`` enum, so ``reason == "bad_signature"`` works and the value can go into logs and
    response bodies as is. :attr:`http_status` is the status a receiver should answer with.
    """

    MISSING_SECRET = "missing_secret"  # noqa: S105 (a reason code, not a secret)
    """No secret was given and the caller did not pass ``require_signature=False``."""
    MISSING_HEADER = "missing_header"
    """``X-Webhook-Timestamp`` or ``X-Webhook-Signature`` is absent (see ``.header``)."""
    INVALID_TIMESTAMP = "invalid_timestamp"
    """``X-Webhook-Timestamp`` is not a whole number of Unix seconds."""
    BAD_SIGNATURE = "bad_signature"
    """The signature does not match the body, timestamp and secret."""
    STALE_TIMESTAMP = "stale_timestamp"
    """The (authentic) timestamp is further from now than the tolerance, past or future."""
    BAD_JSON = "bad_json"
    """The body is not UTF-8 JSON text holding an object."""
    INVALID_PAYLOAD = "invalid_payload"
    """The JSON does not have the shape of a webhook payload (``{"message": {...}}``)."""

    @property
    def http_status(self) -> int:
        """401 for authentication failures, 400 for a body that cannot be read."""
        return 400 if self in (VerificationFailure.BAD_JSON, VerificationFailure.INVALID_PAYLOAD) else 401


class WebhookUsageError(FlireoError, TypeError, ValueError):
    """A webhook function was called with invalid arguments (a programming error, not a bad
    delivery): for example a body that is not the raw request bytes, or a negative tolerance."""


class WebhookVerificationError(FlireoError):
    """A webhook delivery failed verification; ``reason`` says which check failed.

    ``header`` names the missing or malformed header when there is one. The message never
    contains the secret, the expected signature or the received signature.
    """

    def __init__(self, reason: VerificationFailure, message: str, *, header: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.header = header

    @property
    def http_status(self) -> int:
        """The HTTP status a receiver should answer with (401 or 400)."""
        return self.reason.http_status


def get_header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup on any mapping (aiohttp's ``CIMultiDictProxy``, a dict)."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, item in headers.items():
            if isinstance(key, str) and key.lower() == lowered:
                value = item
                break
    if value is None:
        return None
    # Proxies and test clients sometimes hand header values over as bytes.
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("latin-1")
    return str(value).strip()


def _require_bytes(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    # A str or an already-parsed dict would have to be re-serialised, and re-serialised JSON
    # is not the byte string that was signed: refuse early with a pointer to the right call.
    raise WebhookUsageError(
        f"webhook body must be the raw request bytes (e.g. `await request.read()`), got {type(body).__name__}"
    )


def check_signature(
    body: bytes | bytearray | memoryview,
    headers: Mapping[str, str],
    secret: str | None,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    require_signature: bool = True,
    now: float | None = None,
) -> str | None:
    """Check the timestamp and signature headers of a delivery; the body is not parsed.

    Returns the ``X-Webhook-Timestamp`` value (``None`` when checks were skipped because
    ``secret`` is ``None`` and ``require_signature`` is ``False``). Raises
    :class:`WebhookVerificationError` otherwise. ``now`` (Unix seconds) is for tests.
    """
    raw = _require_bytes(body)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not tolerance >= 0:
        raise WebhookUsageError("tolerance must be >= 0 seconds")
    if secret is not None and not isinstance(secret, str):
        raise WebhookUsageError(f"secret must be a string or None, got a {type(secret).__name__}")
    if not secret:
        if require_signature:
            raise WebhookVerificationError(
                VerificationFailure.MISSING_SECRET,
                "no webhook secret configured; pass the agent's webhook_secret, "
                "or secret=None together with require_signature=False to accept unsigned deliveries",
            )
        # An unsigned timestamp proves nothing, so without a secret it is not checked either.
        return None

    timestamp = get_header(headers, TIMESTAMP_HEADER)
    if not timestamp:
        raise WebhookVerificationError(
            VerificationFailure.MISSING_HEADER, f"missing {TIMESTAMP_HEADER} header", header=TIMESTAMP_HEADER
        )
    signature = get_header(headers, SIGNATURE_HEADER)
    if not signature:
        raise WebhookVerificationError(
            VerificationFailure.MISSING_HEADER, f"missing {SIGNATURE_HEADER} header", header=SIGNATURE_HEADER
        )
    # isdigit() alone accepts other Unicode digits; the header is plain ASCII decimal seconds.
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise WebhookVerificationError(
            VerificationFailure.INVALID_TIMESTAMP,
            f"{TIMESTAMP_HEADER} is not Unix time in whole seconds",
            header=TIMESTAMP_HEADER,
        )

    received = signature[len(_SIGNATURE_PREFIX) :] if signature.startswith(_SIGNATURE_PREFIX) else signature
    received = received.strip().lower()
    expected = compute_signature(raw, secret, timestamp)
    # compare_digest on bytes: it refuses non-ASCII str, and a garbage header must read as a
    # bad signature, not crash ("replace" turns any non-ASCII character into "?", which is no
    # hex digit, so such a header never matches).
    if not (
        len(received) == len(expected)
        and hmac.compare_digest(received.encode("ascii", "replace"), expected.encode("ascii"))
    ):
        raise WebhookVerificationError(VerificationFailure.BAD_SIGNATURE, "webhook signature does not match")

    seconds = timestamp_seconds(timestamp)
    if seconds is None:
        # Authentic, but thousands of digits long: no moment within the tolerance.
        raise WebhookVerificationError(
            VerificationFailure.STALE_TIMESTAMP,
            f"webhook timestamp has {len(timestamp)} digits, far outside the tolerance of {tolerance:g} s",
            header=TIMESTAMP_HEADER,
        )
    age = (time.time() if now is None else now) - seconds
    if abs(age) > tolerance:
        when = f"{age:.0f} s old" if age > 0 else f"{-age:.0f} s in the future"
        raise WebhookVerificationError(
            VerificationFailure.STALE_TIMESTAMP,
            f"webhook timestamp is {when} (tolerance {tolerance:g} s)",
            header=TIMESTAMP_HEADER,
        )
    return timestamp


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# One decoder for all deliveries: json.loads with options builds a new one per call.
_decode_json = json.JSONDecoder(parse_constant=_reject_constant).decode


def parse_message(body: bytes | bytearray | memoryview) -> WebhookMessage:
    """Parse a raw webhook body into its typed event (the ``message`` of the payload).

    No signature check: use :func:`verify` for deliveries from the network. Known event types
    decode into their own class; an unknown ``type`` decodes into ``GenericWebhookMessage``.
    """
    raw = _require_bytes(body)
    # Each failure is turned into a WebhookVerificationError after its except block, so that no
    # parser exception travels along as __context__.
    problem: str | None = None
    try:
        data = _decode_json(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        # ValueError covers json.JSONDecodeError (its text quotes a position, never the body)
        # and integers too long to convert.
        problem = f"body is not valid JSON: {exc}"
    except RecursionError:
        problem = "body is not valid JSON: nested too deeply"
    if problem is not None:
        raise WebhookVerificationError(VerificationFailure.BAD_JSON, problem)
    if not isinstance(data, dict):
        raise WebhookVerificationError(VerificationFailure.BAD_JSON, "body is JSON but not an object")

    try:
        payload: WebhookPayload = decode(data, WebhookPayload)
    except DecodeError as exc:
        problem = f"not a webhook payload: {exc}"
    except RecursionError:
        problem = "not a webhook payload: nested too deeply"
    else:
        return payload.message
    raise WebhookVerificationError(VerificationFailure.INVALID_PAYLOAD, problem)


def verify(
    body: bytes | bytearray | memoryview,
    headers: Mapping[str, str],
    secret: str | None,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    require_signature: bool = True,
    now: float | None = None,
) -> WebhookMessage:
    """Verify a webhook delivery and return its typed event.

    ``body`` is the raw request body exactly as received (bytes, never re-serialised JSON);
    ``headers`` any mapping of the request headers (looked up case-insensitively); ``secret``
    the agent's ``webhook_secret``. The signature is ``sha256=<hex HMAC-SHA256>`` over
    ``timestamp + "." + body`` (bare hex is accepted too), compared in constant time, and the
    timestamp must be within ``tolerance`` seconds of now, in either direction.

    ``secret=None`` is an error unless ``require_signature=False`` is passed as well; then no
    header is checked at all. A given secret is always enforced.

    Returns an ``AssistantRequestMessage``, ``ToolCallsMessage``, ``StatusUpdateMessage``,
    ``EndOfCallReportMessage`` or, for an event type this SDK does not know,
    ``GenericWebhookMessage``. Raises :class:`WebhookVerificationError` with a ``reason``.
    """
    check_signature(body, headers, secret, tolerance=tolerance, require_signature=require_signature, now=now)
    return parse_message(body)
