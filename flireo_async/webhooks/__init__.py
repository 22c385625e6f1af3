"""Receiving Flireo webhooks: signature verification, typed events and an aiohttp.web router.

Verify one delivery in any web framework (pass the raw body bytes, never re-serialised JSON)::

    from flireo_async.webhooks import verify, WebhookVerificationError

    try:
        event = verify(await request.read(), request.headers, secret=WEBHOOK_SECRET)
    except WebhookVerificationError as exc:
        return Response(status=exc.http_status)        # 401, or 400 for an unreadable body

Or let a :class:`WebhookRouter` do verification, deduplication, dispatch, replies and deadlines::

    router = WebhookRouter(secret=WEBHOOK_SECRET)

    @router.tool("lookup_customer")
    async def lookup_customer(tool: ToolInvocation) -> dict:
        return await crm.find(tool.arguments["phone"])

    router.add_to(app)                                  # POST /flireo/webhook

:func:`sign` produces the headers Flireo sends, for tests. Behind a load balancer, give every
replica the same :class:`RedisDedupe` URL (``WebhookRouter(secret, dedupe=RedisDedupe(url))``) so
that a delivery is handled once across all of them.
"""

from __future__ import annotations

from ..models import (
    AssistantRequestMessage,
    AssistantRequestResponse,
    EndOfCallReportMessage,
    GenericWebhookMessage,
    StatusUpdateMessage,
    ToolCall,
    ToolCallResult,
    ToolCallsMessage,
    WebhookCall,
    WebhookMessage,
    WebhookPayload,
)
from ._dedupe import Dedupe, DedupeUnavailableError, DeliveryCache, Reply
from ._redis_dedupe import RedisDedupe
from ._router import DEFAULT_PATH, ToolError, ToolInvocation, WebhookRouter, WebhookServer
from ._signature import EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, compute_signature, sign
from ._verify import (
    DEFAULT_TOLERANCE,
    VerificationFailure,
    WebhookUsageError,
    WebhookVerificationError,
    parse_message,
    verify,
)

__all__ = [
    # verification
    "verify",
    "parse_message",
    "sign",
    "compute_signature",
    "WebhookVerificationError",
    "WebhookUsageError",
    "VerificationFailure",
    "DEFAULT_TOLERANCE",
    "EVENT_HEADER",
    "TIMESTAMP_HEADER",
    "SIGNATURE_HEADER",
    # router
    "WebhookRouter",
    "WebhookServer",
    "ToolInvocation",
    "ToolError",
    "DEFAULT_PATH",
    # duplicate detection
    "Dedupe",
    "DeliveryCache",
    "RedisDedupe",
    "DedupeUnavailableError",
    "Reply",
    # event and reply models (also in flireo_async.models)
    "WebhookPayload",
    "WebhookMessage",
    "AssistantRequestMessage",
    "ToolCallsMessage",
    "StatusUpdateMessage",
    "EndOfCallReportMessage",
    "GenericWebhookMessage",
    "WebhookCall",
    "ToolCall",
    "AssistantRequestResponse",
    "ToolCallResult",
]
