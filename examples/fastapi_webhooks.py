"""A FastAPI receiver for Flireo webhooks, verifying every delivery with ``verify()``.

Run it (``pip install flireo-async fastapi uvicorn``)::

    FLIREO_WEBHOOK_SECRET=whsec_... uvicorn examples.fastapi_webhooks:create_app --factory --port 8000

and give an agent ``webhook_url="https://<your host>/flireo/webhook"`` with the same
``webhook_secret``, and a webhook tool named ``lookup_customer`` in its ``llm_config.tools``.

It answers the four events: ``assistant-request`` (greets a known caller by name),
``tool-calls`` (looks the caller up), ``status-update`` and ``end-of-call-report`` (kept in
``app.state.events``; a real service would write them to its database).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from flireo_async import UNSET
from flireo_async.webhooks import (
    AssistantRequestMessage,
    EndOfCallReportMessage,
    StatusUpdateMessage,
    ToolCall,
    ToolCallsMessage,
    WebhookVerificationError,
    verify,
)

CUSTOMERS = {"+31612345678": {"name": "Jan de Vries", "email": "jan@example.com"}}
PATH = "/flireo/webhook"


def lookup_customer(call: ToolCall) -> dict[str, Any]:
    """One tool call's entry of the reply: a ``result`` for the model, or an ``error`` it speaks."""
    customer = CUSTOMERS.get(str(call.function.arguments.get("phone", "")))
    if customer is None:
        return {"toolCallId": call.id, "error": "Customer not found"}
    return {"toolCallId": call.id, "result": customer}


def create_app(secret: str | None = None) -> FastAPI:
    """The app; the secret defaults to the ``FLIREO_WEBHOOK_SECRET`` environment variable."""
    secret = secret if secret is not None else os.environ["FLIREO_WEBHOOK_SECRET"]
    app = FastAPI(title="Flireo webhooks")
    app.state.events = []
    # Flireo redelivers a notification that got a 5xx or no answer with the same timestamp and
    # signature: remember recent signatures so a redelivery is acknowledged without being
    # recorded twice.
    seen: OrderedDict[str, None] = OrderedDict()

    @app.post(PATH)
    async def webhook(request: Request) -> Response:
        body = await request.body()  # the raw bytes: the signature covers them exactly
        try:
            event = verify(body, request.headers, secret=secret)
        except WebhookVerificationError as exc:
            return JSONResponse({"error": exc.reason.value}, status_code=exc.http_status)

        if isinstance(event, ToolCallsMessage):  # 10 s deadline
            return JSONResponse({"results": [lookup_customer(call) for call in event.tool_call_list]})

        if isinstance(event, AssistantRequestMessage):  # 5 s deadline; {} keeps the saved agent
            caller = event.customer.number if event.customer is not UNSET else None
            customer = CUSTOMERS.get(str(caller))
            if customer is None:
                return JSONResponse({})
            return JSONResponse(
                {"assistant": {"first_message": f"Hallo {customer['name']}, waarmee kan ik helpen?"}}
            )

        signature = request.headers.get("X-Webhook-Signature", "")
        if signature in seen:
            return Response(status_code=204)
        seen[signature] = None
        if len(seen) > 1024:
            seen.popitem(last=False)
        if isinstance(event, (StatusUpdateMessage, EndOfCallReportMessage)):
            app.state.events.append(event)
        return Response(status_code=204)

    return app
