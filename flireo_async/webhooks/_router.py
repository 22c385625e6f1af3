"""``WebhookRouter``: an aiohttp.web endpoint that verifies Flireo webhooks and dispatches them.

Per delivery: read the raw body, verify it (401 for authentication failures, 400 for a body that
is not a webhook payload), drop duplicates (replaying the first answer), then dispatch by event:

- ``assistant-request`` → the ``@router.assistant_request`` handler; its return value becomes
  the reply (a model, a dict, or ``None`` → ``{}``). Deadline 5 s (Flireo's).
- ``tool-calls`` → one ``@router.tool(name)`` handler per item of ``tool_call_list``, all run
  concurrently; the reply is ``{"results": [{"toolCallId", "result"}, ...]}`` in list order.
  Deadline 10 s (Flireo's). Tools registered with ``async_=True`` run in the background.
- ``status-update``, ``end-of-call-report`` and any other event → the handler registered with
  ``@router.status_update`` / ``@router.end_of_call_report`` / ``@router.on(type)``; 204.

The router answers ``deadline_margin`` seconds before Flireo's deadline. A handler still running
then is cancelled and a fallback answer goes out: ``{}`` for assistant-request (the saved agent
takes the call, which is also what Flireo does on a timeout) and, per unfinished tool call, a
result ``{"error": "The tool '<name>' did not answer in time."}`` that the model can speak.

A handler that raises (``asyncio.CancelledError`` included: a handler cancelling itself is its
own failure, not the request's) gets the same treatment as a failure: an error result for that
tool only, ``{}`` for assistant-request, 500 for a notification. A delivery that cannot be read
is answered 400 or 401, never 500, whatever its body or headers hold.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import inspect
import json
import logging
import time
from collections.abc import Callable, Collection, Coroutine
from types import TracebackType
from typing import Any, Final, TypeVar

import attrs
from aiohttp import web

from .._convert import encode, format_datetime
from ..models import (
    AssistantRequestMessage,
    ToolCall,
    ToolCallResult,
    ToolCallsMessage,
    ToolCallsSimpleResponse,
    WebhookCall,
    WebhookMessage,
)
from ._dedupe import Dedupe, DedupeUnavailableError, DeliveryCache, Reply, delivery_key
from ._signature import TIMESTAMP_HEADER
from ._verify import (
    DEFAULT_TOLERANCE,
    WebhookVerificationError,
    check_signature,
    get_header,
    parse_message,
    timestamp_seconds,
)

__all__ = [
    "DEFAULT_PATH",
    "ToolError",
    "ToolInvocation",
    "WebhookRouter",
    "WebhookServer",
]

logger = logging.getLogger("flireo_async.webhooks")

DEFAULT_PATH: Final = "/flireo/webhook"
"""Where :meth:`WebhookRouter.add_to` and :meth:`WebhookRouter.app` mount the endpoint."""

ASSISTANT_REQUEST: Final = "assistant-request"
TOOL_CALLS: Final = "tool-calls"
STATUS_UPDATE: Final = "status-update"
END_OF_CALL_REPORT: Final = "end-of-call-report"

ASYNC_TOOL_RESULT: Final = "accepted"
"""The result reported for an async tool: Flireo does not wait for it and speaks the tool's own
``message`` instead, so this only keeps the reply at one entry per tool call."""

_EMPTY_OBJECT = b"{}"
_DEDUPE_UNAVAILABLE = Reply(503, b'{"error":"dedupe_unavailable"}')


class ToolError(Exception):
    """Raise this from a tool handler to tell the model why the tool failed.

    The message becomes the result ``{"error": message}`` and is spoken or acted upon by the
    model, so word it for the caller. Any other exception is logged and reported to the model
    as a generic failure, never with its text.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@attrs.frozen(kw_only=True)
class ToolInvocation:
    """One tool call of a ``tool-calls`` webhook, as handed to a ``@router.tool`` handler."""

    id: str
    """The tool call id (echoed as ``toolCallId`` in the reply)."""
    name: str
    """The tool name (``function.name``)."""
    arguments: dict[str, Any]
    """The parsed JSON arguments the model passed."""
    message: ToolCallsMessage = attrs.field(repr=False)
    """The whole webhook message (caller, number, agent metadata, other tool calls)."""

    @property
    def call(self) -> WebhookCall:
        """The call the tool is used in (``message.call``)."""
        return self.message.call


ToolHandler = Callable[[ToolInvocation], Any]
"""``async def handler(tool: ToolInvocation) -> result`` (a plain function works too)."""
AssistantRequestHandler = Callable[[AssistantRequestMessage], Any]
"""``async def handler(event) -> AssistantRequestResponse | dict | None``."""
EventHandler = Callable[[Any], Any]
"""``async def handler(event) -> None`` for notification events."""

_ToolF = TypeVar("_ToolF", bound=ToolHandler)
_AssistantF = TypeVar("_AssistantF", bound=AssistantRequestHandler)
_EventF = TypeVar("_EventF", bound=EventHandler)
_T = TypeVar("_T")


@attrs.frozen
class _Tool:
    handler: ToolHandler
    is_async: bool


_eager_factory: Callable[..., Any] | None = getattr(asyncio, "eager_task_factory", None)


def _start(coro: Coroutine[Any, Any, _T]) -> asyncio.Task[_T]:
    """A task for a handler, started eagerly where Python can (3.12+): a handler that answers
    without awaiting anything is then done at once, with no event-loop round trip."""
    if _eager_factory is not None:
        task: asyncio.Task[_T] = _eager_factory(asyncio.get_running_loop(), coro)
        return task
    return asyncio.create_task(coro)


async def _wait_all(tasks: Collection[asyncio.Future[Any]], timeout: float) -> None:
    """Wait until every task is done or ``timeout`` seconds have passed.

    ``asyncio.wait(tasks, timeout=...)`` without its copies and result sets: this runs once or
    more per delivery, and the router only needs to know when to look at the tasks.
    """
    left = sum(1 for task in tasks if not task.done())
    if not left:
        return
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()

    def on_done(_task: asyncio.Future[Any]) -> None:
        nonlocal left
        left -= 1
        if left == 0 and not waiter.done():
            waiter.set_result(None)

    def on_timeout() -> None:
        if not waiter.done():
            waiter.set_result(None)

    for task in tasks:
        if not task.done():
            task.add_done_callback(on_done)
    timer = loop.call_later(timeout, on_timeout)
    try:
        await waiter
    finally:
        timer.cancel()
        for task in tasks:
            task.remove_done_callback(on_done)


def _json_default(value: Any) -> Any:
    if attrs.has(type(value)):
        return encode(value)
    if isinstance(value, _dt.datetime):
        return format_datetime(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# allow_nan=False: NaN/Infinity would make the whole reply invalid JSON for the platform. One
# encoder for all replies: json.dumps with options builds a new one per call.
_dumps: Callable[[Any], str] = json.JSONEncoder(
    default=_json_default, allow_nan=False, separators=(",", ":")
).encode


async def _invoke(handler: Callable[[Any], Any], argument: Any) -> Any:
    result = handler(argument)
    if inspect.isawaitable(result):
        result = await result
    return result


class WebhookRouter:
    """Receives Flireo webhooks on aiohttp.web: verifies, deduplicates, dispatches, replies.

    ``secret`` is the agent's ``webhook_secret``; ``None`` is only accepted together with
    ``require_signature=False`` (unsigned deliveries, e.g. behind a trusted proxy).
    ``tolerance`` is the timestamp window in seconds. The router answers ``deadline_margin``
    seconds before ``assistant_request_deadline`` / ``tool_calls_deadline`` (Flireo's 5 s and
    10 s), counted from the moment the request reached the router. ``dedupe_size`` bounds the
    number of remembered deliveries (0 turns duplicate detection off). ``dedupe`` replaces that
    in-process memory with another :class:`Dedupe`, e.g. ``RedisDedupe(url)`` shared by every
    replica behind a load balancer; the router closes it when its application shuts down.

    Handlers may be ``async def`` (recommended) or plain functions; a plain function runs on the
    event loop, so it must be quick: a blocking one also blocks the deadline timer.
    """

    def __init__(
        self,
        secret: str | None,
        *,
        require_signature: bool = True,
        tolerance: float = DEFAULT_TOLERANCE,
        deadline_margin: float = 0.5,
        assistant_request_deadline: float = 5.0,
        tool_calls_deadline: float = 10.0,
        dedupe_size: int = 1024,
        dedupe: Dedupe | None = None,
    ) -> None:
        if not secret and require_signature:
            raise ValueError(
                "WebhookRouter needs the agent's webhook_secret; pass secret=None together with "
                "require_signature=False to accept unsigned deliveries"
            )
        if tolerance < 0:
            raise ValueError("tolerance must be >= 0 seconds")
        if deadline_margin < 0:
            raise ValueError("deadline_margin must be >= 0 seconds")
        for name, deadline in (
            ("assistant_request_deadline", assistant_request_deadline),
            ("tool_calls_deadline", tool_calls_deadline),
        ):
            if deadline - deadline_margin <= 0:
                raise ValueError(f"{name} must be larger than deadline_margin")
        self._secret = secret or None
        self._require_signature = require_signature
        self.tolerance = tolerance
        self.deadline_margin = deadline_margin
        self.assistant_request_deadline = assistant_request_deadline
        self.tool_calls_deadline = tool_calls_deadline
        if dedupe is not None and not isinstance(dedupe, Dedupe):
            raise TypeError(
                f"dedupe must provide claim(), release() and aclose() (a Dedupe), not {type(dedupe).__name__}"
            )
        self._deliveries: Dedupe = DeliveryCache(max_entries=dedupe_size) if dedupe is None else dedupe
        self._tools: dict[str, _Tool] = {}
        self._assistant_request: AssistantRequestHandler | None = None
        self._events: dict[str, EventHandler] = {}
        # Async tools and handlers cancelled at a deadline: referenced here until they finish so
        # that they are not garbage-collected mid-flight and their errors get logged.
        self._background: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        # Never show the secret; show what is routed.
        return (
            f"WebhookRouter(signed={self._secret is not None}, tools={sorted(self._tools)}, "
            f"events={sorted(self._events)}, assistant_request={self._assistant_request is not None})"
        )

    # --- registration ---------------------------------------------------------------------

    def tool(self, name: str, *, async_: bool = False) -> Callable[[_ToolF], _ToolF]:
        """Register the handler of the webhook tool ``name`` (decorator).

        The handler receives a :class:`ToolInvocation` and returns the result: any JSON value
        (dict, list, str, number, bool, None) or an attrs model. Raise :class:`ToolError` to send
        the model a specific error. With ``async_=True`` (for tools configured ``async: true``)
        the router answers at once and runs the handler in the background; its return value is
        dropped, since Flireo does not wait for it.
        """
        if not isinstance(name, str) or not name:
            raise ValueError("tool name must be a non-empty string")

        def register(handler: _ToolF) -> _ToolF:
            if name in self._tools:
                raise ValueError(f"a handler for tool {name!r} is already registered")
            self._tools[name] = _Tool(handler, async_)
            return handler

        return register

    def assistant_request(self, handler: _AssistantF) -> _AssistantF:
        """Register the ``assistant-request`` handler (decorator).

        It receives an ``AssistantRequestMessage`` and returns an ``AssistantRequestResponse``,
        a dict in that shape (``{"assistant_id": ..., "assistant_override": {...}}``,
        ``{"error": "..."}`` to reject the call) or ``None`` for ``{}`` (the saved agent of the
        called number answers). On an exception or at the deadline the router answers ``{}``.
        """
        if self._assistant_request is not None:
            raise ValueError("an assistant-request handler is already registered")
        self._assistant_request = handler
        return handler

    def status_update(self, handler: _EventF) -> _EventF:
        """Register the ``status-update`` handler (decorator); it gets a ``StatusUpdateMessage``."""
        return self.on(STATUS_UPDATE)(handler)

    def end_of_call_report(self, handler: _EventF) -> _EventF:
        """Register the ``end-of-call-report`` handler (decorator); it gets an
        ``EndOfCallReportMessage``."""
        return self.on(END_OF_CALL_REPORT)(handler)

    def on(self, event_type: str) -> Callable[[_EventF], _EventF]:
        """Register the handler of a notification event by name (decorator), including event
        types this SDK does not know yet (the handler then gets a ``GenericWebhookMessage``).

        The router awaits the handler and answers 204; if it raises, the router logs it and
        answers 500 (and forgets the delivery, so that a redelivery runs the handler again).
        """
        if event_type == ASSISTANT_REQUEST:
            raise ValueError("register the assistant-request handler with @router.assistant_request")
        if event_type == TOOL_CALLS:
            raise ValueError("register tool handlers with @router.tool(name)")

        def register(handler: _EventF) -> _EventF:
            if event_type in self._events:
                raise ValueError(f"a handler for {event_type!r} is already registered")
            self._events[event_type] = handler
            return handler

        return register

    # --- mounting and serving -------------------------------------------------------------

    def add_to(self, app: web.Application, path: str = DEFAULT_PATH) -> None:
        """Mount the endpoint on an existing application as ``POST path``; background tasks
        are awaited (then cancelled) when the application shuts down."""
        app.router.add_post(path, self.handle)
        app.on_cleanup.append(self._cleanup)

    def app(self, path: str = DEFAULT_PATH) -> web.Application:
        """A new application serving only this endpoint (``web.run_app(router.app())``)."""
        application = web.Application()
        self.add_to(application, path)
        return application

    async def start(
        self, host: str = "127.0.0.1", port: int = 8080, *, path: str = DEFAULT_PATH
    ) -> WebhookServer:
        """Start serving in the background and return the running :class:`WebhookServer`
        (``port=0`` picks a free port; see ``server.url``). Close it with ``await server.close()``
        or use it as ``async with await router.start(...) as server:``."""
        runner = web.AppRunner(self.app(path))
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        bound = port
        for address in runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                bound = int(address[1])
                break
        server = WebhookServer(runner, host, bound, path)
        logger.info("webhook router listening on %s", server.url)
        return server

    async def serve(self, host: str = "127.0.0.1", port: int = 8080, *, path: str = DEFAULT_PATH) -> None:
        """Serve until cancelled (``asyncio.run(router.serve("0.0.0.0", 8080))``)."""
        server = await self.start(host, port, path=path)
        try:
            await asyncio.Event().wait()
        finally:
            await server.close()

    async def aclose(self, timeout: float = 5.0) -> None:
        """Wait up to ``timeout`` seconds for background tasks (async tools, handlers cancelled at
        a deadline), then cancel the rest."""
        tasks = set(self._background)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    async def _cleanup(self, _app: web.Application) -> None:
        try:
            await self.aclose()
        finally:
            await self._deliveries.aclose()

    def _keep(self, task: asyncio.Task[Any]) -> None:
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- request handling -----------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The aiohttp handler: ``app.router.add_post("/flireo/webhook", router.handle)``."""
        started = asyncio.get_running_loop().time()
        body = await request.read()
        try:
            timestamp = check_signature(
                body,
                request.headers,
                self._secret,
                tolerance=self.tolerance,
                require_signature=self._require_signature,
            )
            message = parse_message(body)
        except WebhookVerificationError as exc:
            # The message of a verification error never holds the secret or a signature.
            logger.warning("webhook rejected (%s): %s", exc.reason.value, exc)
            return _response(Reply(exc.http_status, _dumps({"error": exc.reason.value}).encode()))

        # Unsigned deliveries: the (unverified) timestamp still tells redeliveries apart.
        key = delivery_key(timestamp or get_header(request.headers, TIMESTAMP_HEADER), body)
        # Kept while a replay would still pass verification; unsigned deliveries may lack a
        # usable timestamp, and are kept for one tolerance window from now.
        seconds = timestamp_seconds(timestamp)
        expires_at = (time.time() if seconds is None else seconds) + self.tolerance
        try:
            first = await self._deliveries.claim(
                key, expires_at=expires_at, wait=self._wait(message, started)
            )
        except DedupeUnavailableError as exc:
            logger.error("webhook %s not handled, answered 503: %s", message.type, exc)
            return _response(_DEDUPE_UNAVAILABLE)
        if first is not None:
            logger.info(
                "duplicate %s delivery for call %s: replaying the first answer",
                message.type,
                _call_id(message),
            )
            return _response(first)

        reply: Reply | None = None
        remember = True
        try:
            reply, remember = await self._dispatch(message, started)
        finally:
            # Also reached when the request is cancelled: duplicates waiting on this delivery
            # must get an answer, and the key is forgotten so that a redelivery runs again.
            if reply is None:
                await self._release(key, Reply(503), remember=False)
            else:
                await self._release(key, reply, remember=remember)
        return _response(reply)

    async def _release(self, key: bytes, reply: Reply, *, remember: bool) -> None:
        deliveries = self._deliveries
        if isinstance(deliveries, DeliveryCache):
            deliveries.release_now(key, reply, remember=remember)
            return
        try:
            await deliveries.release(key, reply, remember=remember)
        except Exception:
            # The handlers have run: their reply goes out whatever the store says.
            logger.exception("could not record a webhook reply for duplicate detection")

    def _wait(self, message: WebhookMessage, started: float) -> float | None:
        """How long a copy may wait for the first delivery's reply: until its own deadline."""
        if isinstance(message, ToolCallsMessage):
            return self._budget(self.tool_calls_deadline, started)
        if isinstance(message, AssistantRequestMessage):
            return self._budget(self.assistant_request_deadline, started)
        return None

    async def _dispatch(self, message: WebhookMessage, started: float) -> tuple[Reply, bool]:
        if isinstance(message, AssistantRequestMessage):
            return await self._on_assistant_request(message, started), True
        if isinstance(message, ToolCallsMessage):
            return await self._on_tool_calls(message, started), True
        return await self._on_event(message)

    def _budget(self, deadline: float, started: float) -> float:
        elapsed = asyncio.get_running_loop().time() - started
        return max(0.0, deadline - self.deadline_margin - elapsed)

    async def _on_assistant_request(self, message: AssistantRequestMessage, started: float) -> Reply:
        handler = self._assistant_request
        if handler is None:
            return Reply(200, _EMPTY_OBJECT)
        task = _start(_invoke(handler, message))
        try:
            await _wait_all((task,), self._budget(self.assistant_request_deadline, started))
        finally:
            done = task.done()
            if not done:
                task.cancel()
                self._keep(task)
        if not done:
            logger.error(
                "assistant-request handler did not answer within %.2f s (call %s); answered {} so the saved agent takes the call",
                self.assistant_request_deadline - self.deadline_margin,
                message.call.id,
            )
            return Reply(200, _EMPTY_OBJECT)
        if task.cancelled():
            logger.error(
                "assistant-request handler was cancelled (call %s); answered {} so the saved agent takes the call",
                message.call.id,
            )
            return Reply(200, _EMPTY_OBJECT)
        try:
            result = task.result()
            body = _EMPTY_OBJECT if result is None else self._assistant_body(result)
        except Exception:
            logger.exception(
                "assistant-request handler failed (call %s); answered {} so the saved agent takes the call",
                message.call.id,
            )
            return Reply(200, _EMPTY_OBJECT)
        return Reply(200, body)

    @staticmethod
    def _assistant_body(result: Any) -> bytes:
        if not (isinstance(result, dict) or attrs.has(type(result))):
            raise TypeError(
                f"an assistant-request handler must return an AssistantRequestResponse, a dict or None, not {type(result).__name__}"
            )
        return _dumps(result).encode()

    async def _on_tool_calls(self, message: ToolCallsMessage, started: float) -> Reply:
        budget = self._budget(self.tool_calls_deadline, started)
        pieces: list[str | None] = []
        waiting: dict[asyncio.Task[str], int] = {}
        for index, tool_call in enumerate(message.tool_call_list):
            name = tool_call.function.name
            tool = self._tools.get(name)
            invocation = ToolInvocation(
                id=tool_call.id, name=name, arguments=tool_call.function.arguments, message=message
            )
            if tool is None:
                logger.error("no handler for tool %r (call %s)", name, message.call.id)
                pieces.append(_dumps({"error": f"Unknown tool '{name}'."}))
            elif tool.is_async:
                self._keep(_start(self._run_tool(tool, invocation)))
                pieces.append(_dumps(ASYNC_TOOL_RESULT))
            else:
                waiting[_start(self._run_tool(tool, invocation))] = index
                pieces.append(None)

        if waiting:
            try:
                await _wait_all(waiting.keys(), budget)
            finally:
                pending = [task for task in waiting if not task.done()]
                for task in pending:
                    task.cancel()
                    self._keep(task)
            for task in waiting:
                if task in pending:
                    continue
                if task.cancelled():
                    # The handler let a CancelledError out (the router cancels only pending
                    # tasks, above): that tool failed, the others keep their results.
                    tool_call = message.tool_call_list[waiting[task]]
                    logger.error(
                        "tool %r was cancelled inside its handler (call %s, tool call %s); answered with an error result",
                        tool_call.function.name,
                        message.call.id,
                        tool_call.id,
                    )
                    pieces[waiting[task]] = _dumps({"error": f"The tool '{tool_call.function.name}' failed."})
                else:
                    pieces[waiting[task]] = task.result()
            for task in pending:
                tool_call = message.tool_call_list[waiting[task]]
                logger.error(
                    "tool %r did not answer within %.2f s (call %s, tool call %s); answered with an error result",
                    tool_call.function.name,
                    self.tool_calls_deadline - self.deadline_margin,
                    message.call.id,
                    tool_call.id,
                )
                pieces[waiting[task]] = _dumps(
                    {"error": f"The tool '{tool_call.function.name}' did not answer in time."}
                )
        return Reply(200, _results_body(message.tool_call_list, pieces))

    async def _run_tool(self, tool: _Tool, invocation: ToolInvocation) -> str:
        """Run one tool handler; the JSON text of its result, or of an error result."""
        try:
            value = await _invoke(tool.handler, invocation)
            if isinstance(value, (ToolCallResult, ToolCallsSimpleResponse)):
                value = value.result
            return _dumps(value)
        except ToolError as exc:
            return _dumps({"error": exc.message})
        except Exception:
            logger.exception(
                "tool %r failed (call %s, tool call %s)", invocation.name, invocation.call.id, invocation.id
            )
            return _dumps({"error": f"The tool '{invocation.name}' failed."})

    async def _on_event(self, message: WebhookMessage) -> tuple[Reply, bool]:
        handler = self._events.get(message.type) if isinstance(message.type, str) else None
        if handler is not None:
            # Run as its own task, so that a CancelledError raised by the handler can be told
            # apart from the cancellation of this request (which is passed on to the handler).
            task = asyncio.ensure_future(_invoke(handler, message))
            try:
                await asyncio.wait({task})
            except asyncio.CancelledError:
                task.cancel()
                raise
            if task.cancelled() or task.exception() is not None:
                error = None if task.cancelled() else task.exception()
                logger.error(
                    "%s handler failed (call %s)",
                    message.type,
                    _call_id(message),
                    exc_info=error if error is not None else None,
                )
                return Reply(500, _dumps({"error": "handler failed"}).encode()), False
        return Reply(204), True


def _call_id(message: WebhookMessage) -> str:
    call = message.call
    return call.id if isinstance(call, WebhookCall) else "?"


def _results_body(tool_calls: list[ToolCall], pieces: list[str | None]) -> bytes:
    # Assembled from per-result JSON texts so that one unserialisable result becomes an error
    # result for that tool call instead of failing the whole reply.
    entries = [
        '{"toolCallId":' + _dumps(tool_call.id) + ',"result":' + (piece or "null") + "}"
        for tool_call, piece in zip(tool_calls, pieces, strict=True)
    ]
    return ('{"results":[' + ",".join(entries) + "]}").encode()


def _response(reply: Reply) -> web.Response:
    if reply.body is None:
        return web.Response(status=reply.status)
    return web.Response(status=reply.status, body=reply.body, content_type="application/json")


class WebhookServer:
    """A running standalone router (from :meth:`WebhookRouter.start`)."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, path: str) -> None:
        self._runner = runner
        self.host = host
        self.port = port
        """The bound port (the real one when started with ``port=0``)."""
        self.path = path

    @property
    def url(self) -> str:
        """The endpoint URL, e.g. ``http://127.0.0.1:8080/flireo/webhook``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.path}"

    async def close(self) -> None:
        """Stop accepting requests and shut the application down (awaiting background tasks)."""
        await self._runner.cleanup()

    async def __aenter__(self) -> WebhookServer:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
