"""``FakeFlireo``: a stateful fake of the Flireo API on a loopback aiohttp server.

Every request goes through the same pipeline, in the order a real gateway would apply it::

    record → rate limit (per key) → auth → route (from the spec) → injected latency
    → injected 429/5xx (state untouched) → query/body validation against the spec
    → handler (commits state) → response check (optional) → malformed body / dropped connection
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from ._clock import SimClock, format_timestamp
from ._defaults import DEFAULT_API_KEY
from ._faults import FaultRule, Faults
from ._handlers import ApiError, Context, Handlers, Options, validation_error
from ._inbound import InboundCall, start_inbound_call
from ._ratelimit import FixedWindowLimiter
from ._simulation import DURATION_SECONDS, Simulator
from ._spec import load_spec
from ._state import FakeState, IdFactory, RecordedRequest, WebhookDelivery
from ._validation import Route, SpecIndex

SPEC = load_spec()

__all__ = ["FakeFlireo", "DEFAULT_API_KEY"]

logger = logging.getLogger("flireo_async.testing")

DEFAULT_CREDITS = 100_000.0
"""Prepaid minutes of a new fake organization: plenty for any test."""

_UNSET: Any = object()


class FakeFlireo:
    """A fake Flireo API server for tests, demos and local development.

    ``async with FakeFlireo(speed=100, rate_limit=None, seed=1) as fake:`` starts it on a
    random loopback port; ``fake.url`` is the ``base_url`` for :class:`~flireo_async.AsyncFlireo`
    and ``fake.api_key`` the key it accepts.

    All 50 operations of the spec are served from in-memory state (:attr:`state`), request
    bodies and query parameters are validated against the spec (400 naming the field), outbound
    calls are simulated on a clock running ``speed`` times real time and deliver webhooks,
    inbound calls are rung on demand (:meth:`simulate_inbound_call`), and faults can be
    injected per operation (:meth:`inject`). Every request is recorded in :attr:`requests`.

    Args:
        api_key: the only key accepted (others get 401).
        host: the address to listen on.
        port: the port to listen on (``0`` picks a free port).
        speed: simulated seconds per real second (calls, timestamps, domain verification).
        rate_limit: requests per 60-second window per key (``None``: unlimited). Wall time.
        control_rate_limit: call-control commands per 60 seconds per call (``None``: unlimited).
        failure_share: share (0..1) of outbound calls that fail instead of connecting.
        seed: seeds ids, call outcomes and fault draws, so a run can be reproduced.
        page_delay: real seconds added to every paginated list response.
        sleep: how the injected delays (``latency`` faults, ``page_delay``) are waited out;
            a test may record them instead of spending them.
        credits: the organization's prepaid minutes; at 0 or below outbound calls get 402.
        delete_status: 200 (``{"success": true}``) or 204 (no body) for every DELETE.
        leads_pagination: whether ``GET /campaigns/{id}/leads`` pages (else returns all leads
            without a ``pagination`` key, as some API versions do).
        validate_responses: check every response against the spec's response schema and
            answer 500 (listing the problems) when the fake itself produced a non-conforming
            body; problems are also kept in :attr:`response_problems`.
        require_resend_key: whether the domain endpoints need a stored ``resend`` BYOK key.
        campaign_concurrency: simultaneous calls per scheduled campaign.
        webhook_redeliveries: how often a notification (``status-update``,
            ``end-of-call-report``) that got a 5xx or no answer is sent again, unchanged (same
            timestamp and signature), after 1, 2, 4, ... simulated seconds.
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float = 1.0,
        rate_limit: int | None = 100,
        control_rate_limit: int | None = 10,
        failure_share: float = 0.0,
        seed: int = 0,
        page_delay: float = 0.0,
        credits: float = DEFAULT_CREDITS,
        delete_status: int = 200,
        leads_pagination: bool = True,
        validate_responses: bool = False,
        require_resend_key: bool = True,
        campaign_concurrency: int = 3,
        webhook_redeliveries: int = 3,
        spec: Mapping[str, Any] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if delete_status not in (200, 204):
            raise ValueError("delete_status must be 200 or 204")
        self.api_key = api_key
        self.sleep = sleep
        self.host = host
        self.port = port
        self.seed = seed
        self.rng = random.Random(seed)
        self.ids = IdFactory(self.rng)
        self.clock = SimClock(speed)
        self.spec = SpecIndex(spec if spec is not None else SPEC)
        self.state = FakeState(organization=self._new_organization(credits))
        self.state.resend_domains.append(
            {
                "id": self.ids.uuid(),
                "name": "mail.fake-org.example",
                "status": "verified",
                "region": "eu-west-1",
            }
        )
        self.requests: list[RecordedRequest] = []
        """Every request received, in arrival order."""
        self.faults = Faults(seed)
        self.response_problems: list[str] = []
        """Non-conformances of the fake's own responses (filled when ``validate_responses``)."""
        self.validate_responses = validate_responses
        self.rate_limiter = FixedWindowLimiter(rate_limit) if rate_limit is not None else None
        self.simulator = Simulator(
            self.state,
            self.clock,
            self.rng,
            self.ids,
            failure_share=failure_share,
            control_rate_limit=control_rate_limit,
            campaign_concurrency=campaign_concurrency,
            webhook_redeliveries=webhook_redeliveries,
        )
        self.handlers = Handlers(
            self,
            Options(
                delete_status=delete_status,
                leads_pagination=leads_pagination,
                page_delay=page_delay,
                require_resend_key=require_resend_key,
            ),
        )
        self._runner: web.AppRunner | None = None
        self._request_count = 0

    def _new_organization(self, credits: float) -> dict[str, Any]:
        return {
            "id": self.ids.uuid(),
            "name": "Fake Organization",
            "minutes_balance": float(credits),
            "monthly_usage_minutes": 0.0,
            "active_numbers": 0,
            "active_agents": 0,
            "active_calls": 0,
            "has_local_models_access": False,
            "parent_org_id": None,
        }

    # -- public API -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The API base URL, e.g. ``http://127.0.0.1:54321/api/v1``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.spec.base_path}"

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        """Every webhook the fake tried to deliver, in order."""
        return self.simulator.webhooks.deliveries

    def dialed(self) -> list[str]:
        """Destinations of every outbound call the server processed (duplicates kept)."""
        return list(self.state.dialed)

    def inject(
        self,
        route: str | None = None,
        *,
        status_429: float = 0.0,
        status_5xx: float = 0.0,
        latency: float | tuple[float, float] = 0.0,
        malformed_json: float = 0.0,
        drop_after_processing: float = 0.0,
        retry_after: int = 1,
        times: int | None = None,
    ) -> FaultRule:
        """Set fault probabilities for one operationId (``route``) or for all (``None``).

        A route's rule replaces the global rule for that route. ``latency`` is seconds (or a
        ``(low, high)`` range); the others are probabilities. ``times`` caps how many faults
        the rule injects (e.g. ``status_5xx=1.0, times=1`` fails exactly the next request).
        Call :meth:`clear_faults` to remove them.
        """
        if route is not None and route not in self.spec.by_id:
            raise ValueError(f"unknown operationId {route!r}")
        return self.faults.set(
            route,
            status_429=status_429,
            status_5xx=status_5xx,
            latency=latency,
            malformed_json=malformed_json,
            drop_after_processing=drop_after_processing,
            retry_after=retry_after,
            times=times,
        )

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self.faults.clear()

    def requests_for(self, operation_id: str) -> list[RecordedRequest]:
        """The recorded requests of one operation."""
        return [r for r in self.requests if r.operation_id == operation_id]

    def seed_usage_logs(
        self, n: int, start: datetime | None = None, *, step: timedelta = timedelta(minutes=1)
    ) -> list[dict[str, Any]]:
        """Add ``n`` usage logs, ``step`` apart from ``start`` (default: ending now).

        Durations are seeded; returns the new logs, oldest first.
        """
        first = start if start is not None else self.clock.now_datetime() - step * n
        agent = next(iter(self.state.agents.values()), None)
        logs: list[dict[str, Any]] = []
        for i in range(n):
            logs.append(
                {
                    "id": self.ids.uuid(),
                    "duration_sec": self.rng.randint(*DURATION_SECONDS),
                    "byok_stt": False,
                    "byok_llm": False,
                    "byok_tts": False,
                    "call_type": "phone" if i % 5 else "web",
                    "phone_number": "+31850835037",
                    "agent_name": agent["name"] if agent else "Seeded Agent",
                    "business_name": agent.get("business_name") if agent else None,
                    "created_at": format_timestamp(first + step * i),
                }
            )
        self.state.usage_logs.extend(logs)
        return logs

    def seed_calls(
        self,
        n: int,
        start: datetime | None = None,
        *,
        step: timedelta = timedelta(minutes=1),
        direction: str = "outbound",
        status: str = "ended",
    ) -> list[dict[str, Any]]:
        """Add ``n`` finished calls, ``step`` apart from ``start`` (default: ending now).

        ``direction`` is ``outbound``, ``inbound`` (ids like ``call-_+316…_Xq…``, which need
        URL-encoding) or ``mixed`` (every other call inbound). Returns them, oldest first.
        """
        first = start if start is not None else self.clock.now_datetime() - step * n
        calls: list[dict[str, Any]] = []
        for i in range(n):
            inbound = direction == "inbound" or (direction == "mixed" and i % 2 == 1)
            other = f"+3161{self.rng.randint(0, 9_999_999):07d}"
            token = self.ids.token(12 if inbound else 8)
            call_id = f"call-_{other}_{token}" if inbound else f"call-outbound-{token}"
            created = first + step * i
            duration = self.rng.randint(*DURATION_SECONDS)
            begun = created + timedelta(seconds=3)
            ended = begun + timedelta(seconds=duration)
            calls.append(
                {
                    "id": call_id,
                    "status": status,
                    "direction": "inbound" if inbound else "outbound",
                    "caller_phone": other,
                    "assistant_phone": "+31850835037",
                    "phone_number": "+31850835037",
                    "agent_id": None,
                    "number_id": None,
                    "agent_name": "Seeded Agent",
                    "business_name": None,
                    "started_at": format_timestamp(begun),
                    "ended_at": format_timestamp(ended),
                    "duration_seconds": duration,
                    "end_reason": "user_hangup",
                    "error": None,
                    "summary": f"Seeded call {i + 1} of {n}.",
                    "analysis_result": None,
                    "messages": [
                        {"role": "assistant", "content": "Hallo!"},
                        {"role": "user", "content": "Dag!"},
                    ],
                    "room_name": f"room-{token}",
                    "recording_url": None,
                    "created_at": format_timestamp(created),
                    "updated_at": format_timestamp(ended),
                }
            )
        for call in calls:
            self.state.calls[call["id"]] = call
        return calls

    async def simulate_inbound_call(
        self,
        number_id: str,
        *,
        caller: str,
        tool_calls: Sequence[Mapping[str, Any] | Sequence[Mapping[str, Any]]] = (),
        duration: float | None = None,
    ) -> InboundCall:
        """Ring the registered number ``number_id`` from ``caller`` (E.164) and simulate the call.

        Returns at once with the :class:`InboundCall` (status ``ringing``); ``await
        call.wait()`` waits until it has ended and its webhooks are delivered. When the number's
        agent has a webhook for ``assistant-request``, the fake sends it and uses the reply
        (5 simulated seconds deadline; a late or unusable reply leaves the saved agent in
        charge, an ``error`` rejects the call). Once the call is in progress, each item of
        ``tool_calls`` is a ``tool-calls`` round: ``{"name": "lookup_customer", "arguments":
        {...}}`` for one tool call, or a list of such mappings for several at once. The tool must
        be a webhook tool of the agent's ``llm_config.tools``; the fake sends the round to the
        tool's URL or the agent's webhook and records what came back (10 simulated seconds
        deadline) in ``call.tool_calls``. ``duration`` is the simulated length of the
        conversation after the answer (default: seeded, 30 to 180 seconds); the call then ends
        with the usual status updates and end-of-call report.

        Raises :class:`~flireo_async.RequestValidationError` naming the argument at fault (unknown
        ``number_id``, a ``caller`` that is not E.164, a malformed tool call).
        """
        return start_inbound_call(
            self.simulator,
            self.spec,
            number_id,
            caller=caller,
            tool_calls=tool_calls,
            duration=duration,
        )

    async def wait_calls_finished(self, timeout: float = 30.0) -> None:
        """Wait until no simulated call, campaign dialer or webhook delivery is running.

        Raises :class:`TimeoutError` after ``timeout`` real seconds (calls keep running).
        """
        try:
            await asyncio.wait_for(self.simulator.wait_idle(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"simulated calls still running after {timeout}s") from None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> FakeFlireo:
        """Start listening (``async with`` does this for you)."""
        if self._runner is not None:
            return self
        app = web.Application(client_max_size=32 * 1024 * 1024)
        # [\s\S]: ids may carry any character, including an encoded newline.
        app.router.add_route("*", r"/{tail:[\s\S]*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        address = runner.addresses[0]
        self.port = int(address[1])
        logger.info("fake Flireo listening on %s", self.url)
        return self

    async def close(self) -> None:
        """Stop the simulation and the server."""
        await self.simulator.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeFlireo:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"FakeFlireo(url={self.url!r}, speed={self.clock.speed})"

    # -- request pipeline -----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw_body = await request.read()
        body: Any = None
        body_problem: str | None = None
        if raw_body.strip():
            try:
                # NaN and Infinity are not JSON (RFC 8259), although Python's parser accepts them.
                body = json.loads(raw_body, parse_constant=_reject_json_constant)
            except (ValueError, RecursionError) as exc:
                body = raw_body.decode("utf-8", "replace")
                body_problem = f"request body is not valid JSON ({exc or 'nested too deeply'})"
        raw_path = request.rel_url.raw_path
        base = self.spec.base_path
        inside = raw_path == base or raw_path.startswith(base + "/")
        rel_raw = raw_path[len(base) :] if inside else raw_path
        record = RecordedRequest(
            method=request.method,
            path=unquote(rel_raw) or "/",
            query={k: request.query.get(k, "") for k in request.query},
            body=body,
            status=0,
            at=time.time(),
        )
        self.requests.append(record)
        self._request_count += 1
        headers = {"X-Request-Id": f"req_fake_{self._request_count:08d}"}

        early = self._gate(request, record, headers)
        if isinstance(early, web.Response):
            return early
        route, params = early
        op = route.operation_id

        delay = self.faults.latency_for(op)
        if delay > 0:
            record.fault = "latency"
            await self.sleep(delay)
        refusal = self.faults.refusal(op)
        if refusal is not None:
            record.fault = "status_429" if refusal.status == 429 else "status_5xx"
            record.status = refusal.status
            return web.Response(
                status=refusal.status,
                text=refusal.body,
                content_type=refusal.content_type,
                headers={**headers, **refusal.headers},
            )

        status, payload = await self._process(request, route, params, body, body_problem, headers)

        breakage = self.faults.breakage(op) if 200 <= status < 300 else None
        if breakage == "drop_after_processing":
            # The handler ran and committed its changes; the client never hears about it.
            record.status = status
            record.fault = breakage
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=status)
        if breakage == "malformed_json":
            record.fault = breakage
            text = json.dumps(payload) if payload is not None else '{"success": true}'
            record.status = 200 if status == 204 else status
            return web.Response(
                status=record.status,
                text=text[: max(1, len(text) // 2)],
                content_type="application/json",
                headers=headers,
            )
        return self._json(record, status, payload, headers)

    def _gate(
        self, request: web.Request, record: RecordedRequest, headers: dict[str, str]
    ) -> web.Response | tuple[Route, dict[str, str]]:
        """Rate limit, authentication and routing: an early response, or the route."""
        token = _bearer(request.headers.get("Authorization", ""))
        if self.rate_limiter is not None:
            verdict = self.rate_limiter.hit(token or "")
            headers.update(verdict.headers())
            if not verdict.allowed:
                headers["Retry-After"] = str(verdict.retry_after)
                body = {"error": "Rate limit exceeded", "retry_after": verdict.retry_after}
                return self._json(record, 429, body, headers)
        if token != self.api_key:
            return self._json(
                record, 401, {"error": "Unauthorized", "message": "Invalid or missing API key"}, headers
            )
        raw_path = request.rel_url.raw_path
        base = self.spec.base_path
        route: Route | None = None
        params: dict[str, str] = {}
        allowed: list[str] = []
        if raw_path.startswith(base + "/"):
            route, params, allowed = self.spec.resolve(request.method, raw_path[len(base) :])
        if route is not None:
            record.operation_id = route.operation_id
            return route, params
        if allowed:
            headers["Allow"] = ", ".join(sorted(set(allowed)))
            message = f"{request.method} is not allowed on {record.path}"
            return self._json(record, 405, {"error": "Method not allowed", "message": message}, headers)
        message = f"No endpoint {request.method} {record.path}"
        return self._json(record, 404, {"error": "Not found", "message": message}, headers)

    async def _process(
        self,
        request: web.Request,
        route: Route,
        params: dict[str, str],
        body: Any,
        body_problem: str | None,
        headers: dict[str, str],
    ) -> tuple[int, Any]:
        """Validate against the spec and run the handler: the status and JSON payload."""
        op = route.operation_id
        try:
            query, problems = self.spec.parse_query(route, request.query)
            if problems:
                raise validation_error(*problems)
            required, schema = self.spec.request_body(route)
            if body_problem is not None:
                raise ApiError(400, {"error": "Invalid JSON", "message": body_problem})
            if schema is not None and (body is not None or required):
                if body is None:
                    raise validation_error("body: a JSON request body is required")
                problems = self.spec.validate_body(route, body)
                if problems:
                    raise validation_error(*problems)
            reply = await self.handlers.handle(op, Context(params=params, query=query, body=body))
        except ApiError as error:
            reply = (error.status, error.body, error.headers)
        except Exception:
            logger.exception("fake handler for %s failed", op)
            reply = (500, {"error": "Internal server error", "message": f"the fake failed handling {op}"})
        status, payload = reply[0], reply[1]
        if len(reply) == 3:
            headers.update(reply[2])
        if self.validate_responses and payload is not None:
            problems = self._check_response(route, status, payload)
            if problems:
                status, payload = 500, {"error": "Fake response does not match the spec", "details": problems}
        return status, payload

    def _check_response(self, route: Route, status: int, payload: Any) -> list[str]:
        try:
            problems = self.spec.validate_response(route, status, json.loads(json.dumps(payload)))
        except Exception as exc:  # a broken schema must not hide behind a 500 of ours
            problems = [f"response check failed: {exc}"]
        if problems:
            problems = [f"{route.operation_id} {status}: {p}" for p in problems]
            self.response_problems.extend(problems)
            logger.error("fake response does not match the spec: %s", problems)
        return problems

    @staticmethod
    def _json(record: RecordedRequest, status: int, payload: Any, headers: dict[str, str]) -> web.Response:
        record.status = status
        if status == 204:
            return web.Response(status=204, headers=headers)
        return web.Response(
            status=status, text=json.dumps(payload), content_type="application/json", headers=headers
        )


def _reject_json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _bearer(header: str) -> str | None:
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
