"""Simulated calls, campaign dialing and webhook delivery.

An outbound call is ``connecting`` (the create response says ``dialing``) for a few simulated
seconds of ringing, then either ``failed`` (share ``failure_share``) or ``in-progress`` for a
seeded 30–180 simulated seconds, then ``ended``. Everything random about a call is drawn when
it is created, so a test with a fixed seed sees the same calls whatever the timing.

Ending a call writes its transcript, summary and analysis, adds a usage log, deducts credits,
updates the campaign lead it belongs to, and queues ``status-update`` and
``end-of-call-report`` webhooks. Webhooks of one call are delivered in order; one that gets a 5xx
or no answer is redelivered unchanged; failures are logged and recorded, never raised. Inbound
calls (``_inbound``) reuse the same call model, ending and webhooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ..webhooks._signature import sign
from ._clock import SimClock, format_timestamp
from ._ratelimit import FixedWindowLimiter
from ._state import REALTIME_LLM_PROVIDERS, FakeState, IdFactory, WebhookDelivery

__all__ = [
    "SimCall",
    "Simulator",
    "WebhookSender",
    "example_for_schema",
    "first_line",
    "webhook_target",
    "MAX_REPLY_BYTES",
]

logger = logging.getLogger("flireo_async.testing")

JSON = dict[str, Any]

RING_SECONDS = (2.0, 8.0)
DURATION_SECONDS = (30, 180)
CAMPAIGN_DIAL_INTERVAL = 1.0
"""Simulated seconds between two dials of one campaign."""
MAX_REPLY_BYTES = 1024 * 1024
"""How much of a webhook receiver's answer the fake reads; a longer answer is cut off."""

USER_LINES = (
    "Ja, met wie spreek ik?",
    "Goedemiddag, ik heb een vraag over mijn bestelling.",
    "Kunt u mij later terugbellen?",
    "Ik wil graag een afspraak maken.",
    "Hoe laat zijn jullie morgen open?",
)
ASSISTANT_LINES = (
    "Natuurlijk, ik help u graag verder.",
    "Ik heb het voor u genoteerd.",
    "Dat kan ik voor u regelen.",
    "Een moment, ik zoek het even op.",
)
_FAILURES = (
    ("no_answer", "No answer"),
    ("busy", "Destination busy"),
    ("rejected", "Call rejected by callee"),
)


@dataclass
class SimCall:
    """A call the simulator is running (or ran). ``record`` is the dict in ``state.calls``."""

    record: JSON
    config: JSON
    """The effective agent configuration (saved agent + overrides, or the transient one)."""
    destination: str
    """The other party: the callee of an outbound call, the caller of an inbound one."""
    phone: JSON | None
    direction: str = "outbound"
    lead_id: str | None = None
    campaign_id: str | None = None
    fails: bool = False
    failure: tuple[str, str] = ("no_answer", "No answer")
    ring_seconds: float = 3.0
    planned_seconds: float = 60
    transcript: list[JSON] = field(default_factory=list)
    closing_lines: list[JSON] = field(default_factory=list)
    end_request: asyncio.Event = field(default_factory=asyncio.Event)
    end_status: str = "ended"
    end_reason: str | None = None
    started_sim: float | None = None
    task: asyncio.Task[None] | None = None


class WebhookSender:
    """Delivers webhook events with one aiohttp session.

    Notifications (:meth:`send`) are queued per call and delivered in order; one that gets a 5xx
    or no answer is redelivered, with the same body and headers (so the same timestamp and
    signature), up to ``redeliveries`` times after 1, 2, 4, ... simulated seconds.
    Request/response events (:meth:`request`) are sent at once and wait for the answer until a
    deadline in simulated seconds. Failures are logged and recorded, never raised.
    """

    def __init__(
        self, clock: SimClock | None = None, *, timeout: float = 10.0, redeliveries: int = 3
    ) -> None:
        if redeliveries < 0:
            raise ValueError("webhook_redeliveries must be >= 0")
        self.clock = clock if clock is not None else SimClock()
        self.redeliveries = redeliveries
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._chains: dict[str, asyncio.Task[None]] = {}
        self._requests: dict[asyncio.Task[None], str] = {}
        """Background request deliveries (async tools), with the call each belongs to."""
        self.deliveries: list[WebhookDelivery] = []

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    @property
    def pending(self) -> bool:
        return any(not task.done() for task in [*self._chains.values(), *self._requests])

    @staticmethod
    def _delivery(call_id: str, url: str, secret: str | None, event: str, message: JSON) -> WebhookDelivery:
        body = json.dumps({"message": message}, separators=(",", ":")).encode()
        # Wall-clock timestamps: receivers check them against their own clock (±300 s), which
        # simulated time at speed > 1 would soon leave.
        if secret:
            headers = sign(body, secret, event=event)
        else:
            headers = {
                "Content-Type": "application/json",
                "X-Webhook-Event": event,
                "X-Webhook-Timestamp": str(int(time.time())),
            }
        headers["User-Agent"] = "FlireoFake/1.0"
        return WebhookDelivery(url=url, event=event, call_id=call_id, body=body, headers=headers)

    def send(self, call_id: str, url: str, secret: str | None, event: str, message: JSON) -> None:
        """Queue one notification; it is delivered after the call's earlier notifications."""
        delivery = self._delivery(call_id, url, secret, event, message)
        previous = self._chains.get(call_id)
        self._chains[call_id] = asyncio.get_running_loop().create_task(self._deliver(previous, delivery))

    async def request(
        self,
        call_id: str,
        url: str,
        secret: str | None,
        event: str,
        message: JSON,
        *,
        deadline: float,
        wait: bool = True,
    ) -> WebhookDelivery:
        """Send one event whose answer matters, waiting at most ``deadline`` simulated seconds.

        Returns the delivery with the receiver's status and body (or the error). With
        ``wait=False`` the delivery is sent in the background and returned at once, unanswered.
        """
        delivery = self._delivery(call_id, url, secret, event, message)
        timeout = aiohttp.ClientTimeout(total=max(0.001, self.clock.real_seconds(deadline)))
        if wait:
            await self._post(delivery, timeout, deadline)
        else:
            task = asyncio.get_running_loop().create_task(self._post(delivery, timeout, deadline))
            self._requests[task] = call_id
            task.add_done_callback(lambda done: self._requests.pop(done, None))
        return delivery

    async def _deliver(self, previous: asyncio.Task[None] | None, delivery: WebhookDelivery) -> None:
        if previous is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(previous)
        while True:
            await self._post(delivery, self._timeout, None)
            failed = delivery.status is None or delivery.status >= 500
            if not failed or delivery.attempt > self.redeliveries:
                return
            await self.clock.sleep(float(2 ** (delivery.attempt - 1)))
            delivery = dataclasses.replace(
                delivery, headers=dict(delivery.headers), attempt=delivery.attempt + 1
            )

    async def _post(
        self, delivery: WebhookDelivery, timeout: aiohttp.ClientTimeout, deadline: float | None
    ) -> None:
        delivery.at = time.time()
        self.deliveries.append(delivery)
        try:
            async with self._get_session().post(
                delivery.url, data=delivery.body, headers=delivery.headers, timeout=timeout
            ) as resp:
                delivery.response = await resp.content.read(MAX_REPLY_BYTES)
                delivery.status = resp.status
            if not 200 <= delivery.status < 300:
                logger.warning(
                    "webhook %s for %s (attempt %d): receiver answered %d",
                    delivery.event,
                    delivery.call_id,
                    delivery.attempt,
                    delivery.status,
                )
        except asyncio.TimeoutError:
            limit = f"{deadline:g} simulated" if deadline is not None else f"{timeout.total:g}"
            delivery.timed_out = True
            delivery.error = f"no answer within {limit} seconds"
            logger.warning(
                "webhook %s for %s (attempt %d): %s",
                delivery.event,
                delivery.call_id,
                delivery.attempt,
                delivery.error,
            )
        except Exception as exc:  # a broken receiver must never take the fake down
            delivery.error = f"{type(exc).__name__}: {exc}"
            logger.warning(
                "webhook %s for %s (attempt %d) could not be delivered: %s",
                delivery.event,
                delivery.call_id,
                delivery.attempt,
                delivery.error,
            )

    async def settle(self, call_id: str) -> None:
        """Wait until every delivery of one call has been answered or given up."""
        while True:
            running = [t for t, owner in list(self._requests.items()) if owner == call_id and not t.done()]
            chain = self._chains.get(call_id)
            if chain is not None and not chain.done():
                running.append(chain)
            if not running:
                return
            await asyncio.wait(running)

    async def drain(self) -> None:
        """Wait for every queued delivery (``asyncio.wait``: cancelling the wait cancels nothing)."""
        while self.pending:
            await asyncio.wait([t for t in [*self._chains.values(), *self._requests] if not t.done()])

    async def close(self) -> None:
        tasks = [*self._chains.values(), *self._requests]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._chains.clear()
        self._requests.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None


class Simulator:
    """Runs simulated calls and campaign dialers for one fake server."""

    def __init__(
        self,
        state: FakeState,
        clock: SimClock,
        rng: random.Random,
        ids: IdFactory,
        *,
        failure_share: float = 0.0,
        control_rate_limit: int | None = 10,
        campaign_concurrency: int = 3,
        webhook_redeliveries: int = 3,
    ) -> None:
        if not 0.0 <= failure_share <= 1.0:
            raise ValueError("failure_share must be between 0 and 1")
        self.state = state
        self.clock = clock
        self.rng = rng
        self.ids = ids
        self.failure_share = failure_share
        self.campaign_concurrency = max(1, campaign_concurrency)
        self.control_limiter = FixedWindowLimiter(control_rate_limit) if control_rate_limit else None
        self.webhooks = WebhookSender(clock, redeliveries=webhook_redeliveries)
        self.calls: dict[str, SimCall] = {}
        self._dialers: dict[str, asyncio.Task[None]] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Whether any call, campaign dialer or webhook delivery is still running."""
        return (
            any(not t.done() for t in self._tasks)
            or any(not t.done() for t in self._dialers.values())
            or self.webhooks.pending
        )

    async def wait_idle(self) -> None:
        while self.busy:
            running = [t for t in [*self._tasks, *self._dialers.values()] if not t.done()]
            if running:
                # asyncio.wait, not gather: a timed-out waiter must not cancel the calls.
                await asyncio.wait(running)
            await self.webhooks.drain()

    async def close(self) -> None:
        tasks = [*self._tasks, *self._dialers.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._dialers.clear()
        await self.webhooks.close()

    def spawn(self, coro: Any) -> asyncio.Task[None]:
        """Run a simulation coroutine as a task that :meth:`wait_idle` waits for."""
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)
        return task

    # -- calls ----------------------------------------------------------------------------------

    def start_call(
        self,
        *,
        destination: str,
        config: JSON,
        agent: JSON | None,
        phone: JSON | None,
        lead_id: str | None = None,
        campaign_id: str | None = None,
        system_message: str | None = None,
    ) -> SimCall:
        """Create the call record (status ``connecting``) and start simulating it."""
        token = self.ids.token(8)
        call_id = f"call-outbound-{token}"
        while call_id in self.state.calls:
            call_id = f"call-outbound-{self.ids.token(10)}"
        now = self.clock.iso()
        record: JSON = {
            "id": call_id,
            "status": "connecting",
            "direction": "outbound",
            "caller_phone": destination,
            "assistant_phone": phone["phone_number"] if phone else None,
            "phone_number": phone["phone_number"] if phone else None,
            "agent_id": agent["id"] if agent else None,
            "number_id": phone["id"] if phone else None,
            "agent_name": agent["name"] if agent else None,
            "business_name": (agent or config).get("business_name"),
            "started_at": None,
            "ended_at": None,
            "duration_seconds": None,
            "end_reason": None,
            "error": None,
            "summary": None,
            "analysis_result": None,
            "messages": None,
            "room_name": f"outbound-{token}",
            "recording_url": None,
            "created_at": now,
            "updated_at": now,
        }
        rng = self.rng
        fails = rng.random() < self.failure_share
        call = SimCall(
            record=record,
            config=config,
            destination=destination,
            phone=phone,
            lead_id=lead_id,
            campaign_id=campaign_id,
            fails=fails,
            failure=rng.choice(_FAILURES),
            ring_seconds=rng.uniform(*RING_SECONDS),
            planned_seconds=rng.randint(*DURATION_SECONDS),
        )
        first = first_line(config)
        if system_message:
            call.transcript.append({"role": "system", "content": system_message})
        call.transcript.append({"role": "assistant", "content": first})
        call.transcript.append({"role": "user", "content": rng.choice(USER_LINES)})
        call.transcript.append({"role": "assistant", "content": rng.choice(ASSISTANT_LINES)})
        call.closing_lines = [{"role": "user", "content": "Dank u wel, tot ziens."}]
        self.state.calls[call_id] = record
        self.state.dialed.append(destination)
        self.calls[call_id] = call
        call.task = self.spawn(self._run(call))
        return call

    async def _run(self, call: SimCall) -> None:
        record = call.record
        await self.clock.sleep(call.ring_seconds)
        if call.fails:
            reason, error = call.failure
            now = self.clock.iso()
            record.update(
                status="failed",
                end_reason=reason,
                error=error,
                ended_at=now,
                updated_at=now,
                duration_seconds=0,
            )
            self.status_update(call, extra={"end_reason": reason, "error": error})
            self._finish_lead(call, connected=False)
            return
        call.started_sim = self.clock.now()
        now = format_timestamp(call.started_sim)
        record.update(status="in-progress", started_at=now, updated_at=now)
        self.status_update(call)
        await self.talk_until_end(call)

    async def talk_until_end(self, call: SimCall) -> None:
        """Let a connected call run until ``planned_seconds`` (capped by the agent's
        ``max_duration_seconds``) after it connected, or until an end is requested; then end it."""
        planned = call.planned_seconds
        reason = self.rng_reason(call)
        max_duration = call.config.get("max_duration_seconds")
        if (
            isinstance(max_duration, int)
            and not isinstance(max_duration, bool)
            and 0 < max_duration < planned
        ):
            planned, reason = max_duration, "max_duration"
        started = call.started_sim if call.started_sim is not None else self.clock.now()
        remaining = planned - (self.clock.now() - started)
        if remaining > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(call.end_request.wait(), timeout=self.clock.real_seconds(remaining))
        if call.end_request.is_set():
            reason = call.end_reason or "api_request"
        self.end(call, reason)

    @staticmethod
    def rng_reason(call: SimCall) -> str:
        # Deterministic per call: derived from the planned duration drawn at creation.
        return "user_hangup" if call.planned_seconds % 3 else "assistant_ended_call"

    def end(self, call: SimCall, reason: str) -> None:
        """End a connected call now: transcript, summary, analysis, usage, webhooks."""
        record = call.record
        started = call.started_sim if call.started_sim is not None else self.clock.now()
        duration = max(1, round(self.clock.now() - started))
        # Whole seconds, so that ended_at - started_at == duration_seconds exactly.
        started_at = format_timestamp(started)
        ended_at = format_timestamp(started + duration)
        transcript = (
            [*call.transcript, *call.closing_lines] if call.end_status == "ended" else list(call.transcript)
        )
        analysis = _analysis(call.config, transcript, self.rng)
        if call.direction == "inbound":
            summary = (
                f"Inbound call from {call.destination} lasted {duration} seconds; "
                f"the agent answered and handled the request ({reason})."
            )
        else:
            summary = (
                f"Outbound call to {call.destination} lasted {duration} seconds; "
                f"the contact answered and the agent handled the request ({reason})."
            )
        record.update(
            status=call.end_status,
            ended_at=ended_at,
            duration_seconds=duration,
            end_reason=reason,
            summary=summary,
            messages=transcript,
            analysis_result=analysis,
            updated_at=ended_at,
        )
        self._usage_log(call, duration, ended_at)
        self.status_update(call, extra={"end_reason": reason})
        report: JSON = {
            "duration_seconds": duration,
            "summary": summary,
            "messages": transcript,
            "end_reason": reason,
            "started_at": started_at,
            "ended_at": ended_at,
        }
        if analysis is not None:
            report["analysis"] = analysis
        self.emit(call, "end-of-call-report", report)
        self._finish_lead(call, connected=True)

    def _usage_log(self, call: SimCall, duration: int, ended_at: str) -> None:
        config = call.config
        keys = self.state.byok_keys

        def byok(block: str) -> bool:
            conf = config.get(block)
            return isinstance(conf, dict) and conf.get("provider") in keys

        self.state.usage_logs.append(
            {
                "id": self.ids.uuid(),
                "duration_sec": duration,
                "byok_stt": byok("stt_config"),
                "byok_llm": byok("llm_config"),
                "byok_tts": byok("tts_config"),
                "call_type": "phone",
                "phone_number": call.phone["phone_number"] if call.phone else None,
                "agent_name": call.record.get("agent_name"),
                "business_name": call.record.get("business_name"),
                "created_at": ended_at,
            }
        )
        org = self.state.organization
        minutes = duration / 60.0
        org["minutes_balance"] = round(float(org.get("minutes_balance", 0)) - minutes, 4)
        org["monthly_usage_minutes"] = round(float(org.get("monthly_usage_minutes", 0)) + minutes, 4)

    # -- webhooks -------------------------------------------------------------------------------

    def status_update(self, call: SimCall, extra: JSON | None = None) -> None:
        """Queue a ``status-update`` with the call's current status."""
        self.emit(call, "status-update", dict(extra or {}))

    def emit(self, call: SimCall, event: str, fields: JSON) -> None:
        """Queue a notification to the call's webhook, if it has one for ``event``."""
        target = webhook_target(call.config, event)
        if target is not None:
            url, secret = target
            self.webhooks.send(call.record["id"], url, secret, event, self.message(call, event, fields))

    def message(self, call: SimCall, event: str, fields: JSON) -> JSON:
        """The ``message`` of a webhook about ``call``: the common envelope plus ``fields``."""
        phone = call.phone
        message: JSON = {
            "type": event,
            "timestamp": self.clock.iso(),
            "call": {
                "id": call.record["id"],
                "type": f"{call.direction}_phone_call",
                "status": call.record["status"],
            },
            "phone_number": {
                "id": phone["id"] if phone else None,
                "number": phone["phone_number"] if phone else None,
                "name": phone.get("name") if phone else None,
            },
            "customer": {"number": call.destination},
            **fields,
        }
        if isinstance(call.config.get("metadata"), dict):
            message["assistant"] = {"metadata": call.config["metadata"]}
        return message

    # -- call control ---------------------------------------------------------------------------

    def control(self, call_id: str, command: JSON) -> tuple[int, JSON, dict[str, str]]:
        """Apply a control command; returns status, body and extra headers. The caller has
        already checked that the call exists."""
        headers: dict[str, str] = {}
        if self.control_limiter is not None:
            verdict = self.control_limiter.hit(call_id)
            if not verdict.allowed:
                headers["Retry-After"] = str(verdict.retry_after)
                return (
                    429,
                    {
                        "error": "Rate limit exceeded",
                        "retry_after": verdict.retry_after,
                        "message": "At most 10 control commands per minute per call",
                    },
                    headers,
                )
        call = self.calls.get(call_id)
        record = self.state.calls.get(call_id)
        if (
            call is None
            or record is None
            or record.get("status") != "in-progress"
            or call.end_request.is_set()
        ):
            status = record.get("status") if record else "unknown"
            return (
                400,
                {
                    "error": "Call is not active",
                    "message": f"Call control needs an in-progress call (status: {status})",
                },
                headers,
            )
        kind = command.get("type")
        if kind == "inject-context":
            call.transcript.append({"role": "system", "content": str(command.get("content", ""))})
            if command.get("trigger_response"):
                call.transcript.append({"role": "assistant", "content": self.rng.choice(ASSISTANT_LINES)})
        elif kind == "say":
            call.transcript.append({"role": "assistant", "content": str(command.get("content", ""))})
            if command.get("end_after"):
                self.request_end(call, "assistant_ended_call")
        elif kind == "end-call":
            if isinstance(command.get("message"), str):
                call.transcript.append({"role": "assistant", "content": command["message"]})
            self.request_end(call, "api_end_call")
        elif kind == "transfer":
            if isinstance(command.get("message"), str):
                call.transcript.append({"role": "assistant", "content": command["message"]})
            self.request_end(call, "transferred", status="transferred")
        else:
            return (
                400,
                {"error": "Invalid command", "message": f"Unknown control command type {kind!r}"},
                headers,
            )
        return 200, {"success": True, "message": "Command sent successfully"}, headers

    @staticmethod
    def request_end(call: SimCall, reason: str, *, status: str = "ended") -> None:
        call.end_reason = reason
        call.end_status = status
        call.closing_lines = []  # the agent (or the API) had the last word
        call.end_request.set()

    # -- campaigns ------------------------------------------------------------------------------

    def _finish_lead(self, call: SimCall, *, connected: bool) -> None:
        if call.lead_id is None:
            return
        lead = self.state.leads.get(call.lead_id)
        if lead is not None and lead.get("call_id") == call.record["id"]:
            lead["status"] = "completed" if connected else "failed"
        if call.campaign_id is not None:
            self.refresh_counters(call.campaign_id)
            self.wake(call.campaign_id)

    def refresh_counters(self, campaign_id: str) -> None:
        campaign = self.state.campaigns.get(campaign_id)
        if campaign is None:
            return
        leads = self.state.leads_of(campaign_id)
        campaign["total_leads"] = len(leads)
        campaign["completed_leads"] = sum(1 for lead in leads if lead["status"] == "completed")
        campaign["failed_leads"] = sum(1 for lead in leads if lead["status"] == "failed")
        campaign["updated_at"] = self.clock.iso()

    def wake(self, campaign_id: str) -> None:
        event = self._wakeups.get(campaign_id)
        if event is not None:
            event.set()

    def schedule_campaign(self, campaign_id: str, dial: Callable[[JSON, JSON], SimCall | None]) -> None:
        """Start (or wake) the dialer of a campaign whose status became ``scheduled``.

        ``dial(campaign, lead)`` places the call for one lead (or returns None when it cannot).
        """
        running = self._dialers.get(campaign_id)
        if running is not None and not running.done():
            self.wake(campaign_id)
            return
        self._wakeups[campaign_id] = asyncio.Event()
        task = asyncio.get_running_loop().create_task(self._dial_campaign(campaign_id, dial))
        task.add_done_callback(_log_failure)
        self._dialers[campaign_id] = task

    def stop_campaign(self, campaign_id: str) -> None:
        task = self._dialers.pop(campaign_id, None)
        if task is not None:
            task.cancel()
        self._wakeups.pop(campaign_id, None)

    async def _dial_campaign(self, campaign_id: str, dial: Callable[[JSON, JSON], SimCall | None]) -> None:
        wakeup = self._wakeups[campaign_id]
        while True:
            campaign = self.state.campaigns.get(campaign_id)
            if campaign is None or campaign.get("status") != "scheduled":
                return
            leads = self.state.leads_of(campaign_id)
            pending = [lead for lead in leads if lead["status"] == "pending"]
            calling = sum(1 for lead in leads if lead["status"] == "calling")
            if not pending and calling == 0:
                campaign["status"] = "completed"
                self.refresh_counters(campaign_id)
                return
            if pending and calling < self.campaign_concurrency:
                if dial(campaign, pending[0]) is None:
                    return
                await self.clock.sleep(CAMPAIGN_DIAL_INTERVAL)
                continue
            wakeup.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wakeup.wait(), timeout=max(0.01, self.clock.real_seconds(10.0)))


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("simulation task failed", exc_info=task.exception())


def webhook_target(config: JSON, event: str) -> tuple[str, str | None] | None:
    """Where an agent configuration sends ``event``: its ``webhook_url`` and secret, or ``None``
    when it has no URL or its ``webhook_events`` leave the event out."""
    url = config.get("webhook_url")
    if not isinstance(url, str) or not url:
        return None
    events = config.get("webhook_events")
    if isinstance(events, list) and event not in events:
        return None
    secret = config.get("webhook_secret")
    return url, secret if isinstance(secret, str) and secret else None


def first_line(config: JSON, *, inbound: bool = False) -> str:
    """What the agent says when the call connects."""
    speech = config.get("speech_config")
    if not inbound and isinstance(speech, dict) and isinstance(speech.get("first_message_outbound"), str):
        return str(speech["first_message_outbound"])
    if isinstance(config.get("first_message"), str) and config["first_message"]:
        return str(config["first_message"])
    name = config.get("business_name") or config.get("name") or "ons bedrijf"
    return f"Goedendag, u spreekt met de digitale assistent van {name}."


def _analysis(config: JSON, transcript: list[JSON], rng: random.Random) -> JSON | None:
    plan = config.get("analysis_plan")
    if not isinstance(plan, dict):
        return None
    data_plan = plan.get("structured_data_plan")
    if not isinstance(data_plan, dict) or not data_plan.get("enabled"):
        return None
    threshold = plan.get("min_messages_threshold", 2)
    if isinstance(threshold, int) and len(transcript) < threshold:
        return None
    value = example_for_schema(data_plan.get("schema") or {"type": "object"}, rng)
    return value if isinstance(value, dict) else {"result": value}


def example_for_schema(schema: Any, rng: random.Random, depth: int = 0) -> Any:
    """A plausible value for a (simple) JSON Schema: what the fake's "analysis model" extracts."""
    if not isinstance(schema, dict) or depth > 6:
        return None
    if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
        return rng.choice(schema["enum"])
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties") or {}
        return {str(k): example_for_schema(v, rng, depth + 1) for k, v in props.items()}
    if kind == "array":
        return [
            example_for_schema(schema.get("items") or {}, rng, depth + 1) for _ in range(rng.randint(1, 2))
        ]
    if kind == "integer":
        low = int(schema.get("minimum", 1))
        high = int(schema.get("maximum", max(low, 10)))
        return rng.randint(low, max(low, high))
    if kind == "number":
        bottom = float(schema.get("minimum", 0.0))
        top = float(schema.get("maximum", max(bottom, 1.0)))
        return round(rng.uniform(bottom, max(bottom, top)), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "string":
        return rng.choice(("ja", "nee", "volgende week", "onbekend"))
    return None


E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
"""An E.164 phone number: ``+`` and 7 to 15 digits, no leading zero."""


def is_e164(value: Any) -> bool:
    return isinstance(value, str) and E164.fullmatch(value) is not None


def is_realtime(config: JSON) -> bool:
    llm = config.get("llm_config")
    return isinstance(llm, dict) and llm.get("provider") in REALTIME_LLM_PROVIDERS


def minutes(value: float) -> int:
    return math.ceil(value / 60)
