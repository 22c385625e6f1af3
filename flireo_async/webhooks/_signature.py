"""Webhook signatures: HMAC-SHA256 over ``timestamp + "." + raw body``, lowercase hex."""

from __future__ import annotations

import hmac
import time

__all__ = ["compute_signature", "sign", "EVENT_HEADER", "TIMESTAMP_HEADER", "SIGNATURE_HEADER"]

EVENT_HEADER = "X-Webhook-Event"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
SIGNATURE_HEADER = "X-Webhook-Signature"


def compute_signature(body: bytes, secret: str, timestamp: str) -> str:
    """The lowercase hex HMAC-SHA256 of ``timestamp.body`` keyed with the UTF-8 secret."""
    # hmac.digest: the one-shot C implementation, no HMAC object per delivery.
    return hmac.digest(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, "sha256").hex()


def sign(
    body: bytes, secret: str, timestamp: int | None = None, *, event: str | None = None
) -> dict[str, str]:
    """The headers Flireo sends with a webhook whose raw body is ``body`` (for tests and the
    fake server): ``X-Webhook-Timestamp``, ``X-Webhook-Signature`` and, when given,
    ``X-Webhook-Event``."""
    ts = str(int(time.time()) if timestamp is None else int(timestamp))
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: "sha256=" + compute_signature(body, secret, ts),
    }
    if event is not None:
        headers[EVENT_HEADER] = event
    return headers
