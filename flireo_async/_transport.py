"""One API call over HTTP: pacing, the concurrency gate, retries, error mapping and decoding.

Nothing here knows a particular endpoint: what to unwrap, whether a POST is safe to repeat and
which extra limits apply all come from the generated :class:`~flireo_async._operation.Operation`.
"""

from __future__ import annotations

import asyncio
import html
import json
import math
import re
import sys
import time
import types
import typing
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar, cast
from urllib.parse import quote

import aiohttp
import attrs
from multidict import CIMultiDict
from yarl import URL

from . import _json, _retry
from ._config import ClientConfig
from ._convert import DecodeError, decode, decoder_of, encode
from ._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    ClientClosedError,
    EventLoopMismatchError,
    RateLimitError,
    RequestValidationError,
    ResponseTooLargeError,
    error_class_for,
)
from ._logging import ATTEMPT_FAILED, STATUS_RETRIED, logger
from ._operation import Operation
from ._options import RequestOptions, merge_headers
from ._pagination import DeferredItems
from ._query import encode_query
from ._ratelimit import Pacer
from ._response import RawResponse
from ._retry import judge, parse_retry_after
from ._types import WIRE, key_fingerprint
from ._version import __version__

__all__ = ["EncodedBody", "Transport"]

T = TypeVar("T")

USER_AGENT = (
    f"flireo-async/{__version__} python/{sys.version_info[0]}.{sys.version_info[1]} "
    f"aiohttp/{aiohttp.__version__}"
)
_DOT_SEGMENTS = frozenset({".", ".."})


class _Shared:
    """What a client shares with the clients derived from it by ``with_options``: the aiohttp
    session, whether the client was closed, and the event loop the session belongs to."""

    def __init__(
        self,
        session: aiohttp.ClientSession | None,
        trace_configs: Sequence[aiohttp.TraceConfig] | None = None,
    ) -> None:
        self.session = session
        self.trace_configs = list(trace_configs or ())
        self.owns_session = session is None
        self.closed = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pacers: list[Pacer] = []
        """Pacers made for this client and the clients derived from it; closed with the client."""
        self.repeats_off = False
        """Whether aiohttp's own repeat of a failed idempotent request is switched off in the
        session (one the client created): then no per-request middleware is needed for it."""


def _single_pass() -> Any:
    """A per-request aiohttp middleware that lets one SDK attempt through aiohttp only once.

    aiohttp repeats a GET or DELETE once by itself when the connection drops (``ClientSession.
    _request`` retries on ``ClientOSError``/``ServerDisconnectedError`` and has no public switch
    for it), which silently doubled every attempt of the SDK's own retry loop. On aiohttp's second
    pass this middleware raises the first failure again without sending anything, so the SDK's
    ``max_retries`` is the only retry count.
    """
    first: list[BaseException] = []

    async def once(request: aiohttp.ClientRequest, handler: Any) -> aiohttp.ClientResponse:
        if first:
            raise first[0]
        try:
            return cast(aiohttp.ClientResponse, await handler(request))
        except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
            first.append(exc)
            raise

    return once


class EncodedBody:
    """A request body already encoded to JSON bytes (see :func:`encode_body`): sent as it is."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


def encode_body(body: Any, *, encoded: bool = False) -> bytes:
    """The JSON bytes of a request body (``encoded=True``: ``body`` is already JSON-ready
    values, as :func:`~flireo_async._convert.encode` returns); raises
    :class:`RequestValidationError` for what JSON cannot carry (NaN, infinities, objects nested
    past the interpreter's limit)."""
    problem: RequestValidationError
    try:
        encoded = body if encoded else encode(body)
        try:
            return _json.dumps(encoded)
        except ValueError:
            where = _json.non_finite_path(encoded)
            if where is None:
                raise
            problem = RequestValidationError(
                where, "must be a finite number: NaN and Infinity are not valid JSON"
            )
    except RecursionError:
        problem = RequestValidationError("body", "is nested too deeply to be sent as JSON")
    except (TypeError, ValueError) as exc:
        problem = RequestValidationError("body", f"cannot be sent as JSON: {exc}")
    raise problem


class Transport:
    """Executes operations for one client configuration; shares its session and limits."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        session: aiohttp.ClientSession | None = None,
        pacer: Pacer | None = None,
        gate: asyncio.Semaphore | None = None,
        shared: _Shared | None = None,
        trace_configs: Sequence[aiohttp.TraceConfig] | None = None,
    ) -> None:
        self.config = config
        self._shared = shared if shared is not None else _Shared(session, trace_configs)
        # Only the client that created the shared state closes it; derived clients share it.
        self._root = shared is None
        if pacer is None:
            pacer = config.rate_limiter.pacer(key_fingerprint(config.api_key), config.rate_limit)
            self._shared.pacers.append(pacer)
        self.pacer = pacer
        self.gate = gate or asyncio.Semaphore(config.max_concurrency)
        self._base_text = config.base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=config.timeout)
        self._urls: dict[tuple[str, tuple[str, ...]], URL] = {}
        # The decoder of each result type, looked up once (the converter's dispatch is slower).
        self._decoders: dict[Any, Callable[[Any, Any], Any]] = {}
        # The user's default headers may replace Accept and User-Agent, never Authorization
        # (ClientConfig refuses it there).
        self._headers = {
            **merge_headers({"Accept": "application/json", "User-Agent": USER_AGENT}, config.default_headers),
            "Authorization": f"Bearer {config.api_key}",
        }

    # -- session lifecycle --------------------------------------------------------------------

    @property
    def shared(self) -> _Shared:
        """The session state shared with derived transports (for ``with_options``)."""
        return self._shared

    @property
    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session (created on first use); raises :class:`ClientClosedError` once closed."""
        shared = self._shared
        if shared.closed:
            raise ClientClosedError(
                "this AsyncFlireo client is closed; create a new client (nothing was sent)",
                method="",
                url=self._base_text,
                sent=False,
            )
        if shared.session is None:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
            session = aiohttp.ClientSession(
                connector=connector, json_serialize=json.dumps, trace_configs=shared.trace_configs or None
            )
            if isinstance(getattr(session, "_retry_connection", None), bool):
                # The switch behind aiohttp's repeat (see _single_pass), in a session nobody else
                # uses: cheaper than a middleware on every request. Sessions of other aiohttp
                # versions, and the user's, get the middleware.
                session._retry_connection = False
                shared.repeats_off = True
            shared.session = session
        elif shared.session.closed:
            whose = "it created" if shared.owns_session else "passed to AsyncFlireo(session=...)"
            raise ClientClosedError(
                f"the aiohttp session {whose} is closed; create a new client (nothing was sent)",
                method="",
                url=self._base_text,
                sent=False,
            )
        return shared.session

    def _check_loop(self, method: str, url: URL | str) -> None:
        shared = self._shared
        loop = asyncio.get_running_loop()
        if shared.loop is None:
            shared.loop = loop
        elif shared.loop is not loop:
            state = "closed" if shared.loop.is_closed() else "still running"
            raise EventLoopMismatchError(
                "this AsyncFlireo client belongs to the event loop it was first used in (now "
                f"{state}), not to the current one; create one client per event loop, e.g. inside "
                "the coroutine passed to asyncio.run (nothing was sent)",
                method=method,
                url=str(url),
                sent=False,
            )

    async def close(self) -> None:
        """Close the session (when this client created it); later requests raise
        :class:`ClientClosedError`. A client made by ``with_options`` closes nothing."""
        if not self._root:
            return
        shared = self._shared
        shared.closed = True
        session = shared.session
        if session is not None and shared.owns_session and not session.closed:
            await session.close()
        pacers, shared.pacers = shared.pacers, []
        for pacer in pacers:
            await pacer.aclose()

    # -- one call -----------------------------------------------------------------------------

    def build_url(self, op: Operation[Any], path: tuple[str, ...]) -> URL:
        key = (op.path, path)
        url = self._urls.get(key)
        if url is None:
            url = self._build_url(op, path)
            if len(self._urls) >= 1024:  # a small cache: the same ids are often read repeatedly
                self._urls.clear()
            self._urls[key] = url
        return url

    def _build_url(self, op: Operation[Any], path: tuple[str, ...]) -> URL:
        text = op.path
        for index, (name, value) in enumerate(zip(op.path_params, path, strict=True)):
            arg = op.path_names[index] if index < len(op.path_names) else name
            if not isinstance(value, str) or not value:
                raise RequestValidationError(arg, f"must be a non-empty string, got {value!r}")
            if value in _DOT_SEGMENTS:
                # "." and ".." are path segments that proxies and servers resolve: `leads/..`
                # would address the campaign itself.
                raise RequestValidationError(arg, f"must not be {value!r} (a relative path segment)")
            text = text.replace("{" + name + "}", quote(value, safe=""))
        return URL(self._base_text + text, encoded=True)

    async def request(
        self,
        op: Operation[T],
        *,
        path: tuple[str, ...] = (),
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        before_send: Callable[[], Awaitable[None]] | None = None,
        options: RequestOptions | None = None,
    ) -> RawResponse[T]:
        """Send one operation, with pacing, retries and decoding.

        ``before_send`` is awaited once, after pacing and just before the request first goes
        on the wire; if it raises, nothing is sent and the exception propagates. The bulk
        launcher records "this lead is being dialed" there, so that a crash while a request
        waits for its turn never leaves a lead looking as if it might have been dialed.

        ``options`` (per-call timeout and extra headers, query and body) apply to every attempt.
        """
        url = self.build_url(op, path)
        params = encode_query(op, query)
        headers = self._headers
        timeout = self._timeout
        if options is not None:
            if options.extra_query:
                options.check_query(op.id, {param.name: param.arg for param in op.query})
                params = {**params, **options.extra_query}
            if options.extra_body is not None:
                body = _merged_body(op, body, options.extra_body)
            if options.timeout is not None:
                timeout = aiohttp.ClientTimeout(total=options.timeout)
        if params:
            url = url.update_query(params)
        data: bytes | None = None
        if body is not None:
            data = body.data if type(body) is EncodedBody else encode_body(body)
            headers = {**headers, "Content-Type": "application/json"}
        if options is not None and options.extra_headers:
            headers = merge_headers(headers, options.extra_headers)
        self._check_loop(op.method, url)
        key = None
        if op.per_key_limit is not None:
            key = f"{op.id}:{path[op.path_params.index(op.per_key_limit.key_param)]}"

        pacer = self.pacer

        attempt = 0
        ambiguous_before = False
        while True:
            session = self.session  # raises ClientClosedError (not retried) once closed
            self._fail_fast_if_cooling_down()
            waited = 0.0
            if key is not None and op.per_key_limit is not None:
                waited += await pacer.acquire_key(
                    key, op.per_key_limit.requests, op.per_key_limit.per_seconds
                )
            try:
                async with self.gate:
                    # The token is taken inside the gate, so that it is spent right away: a
                    # token granted and then held in a queue could reach the server late and
                    # land in the next window with a full budget of others.
                    if not pacer.try_acquire():
                        self._fail_fast_if_cooling_down()
                        waited += await pacer.acquire()
                    if before_send is not None:
                        hook, before_send = before_send, None
                        await hook()
                    status, resp_headers, raw = await self._send(
                        session, op, url, headers, data, timeout, attempt + 1
                    )
            except APIConnectionError as exc:
                failure: _retry.Failure = _retry.failure_of(exc) or "dropped"
                verdict = judge(failure, idempotent=op.idempotent)
                retry = verdict.retry and attempt < self.config.max_retries
                logger.info(
                    ATTEMPT_FAILED,
                    op.method,
                    op.path,
                    attempt + 1,
                    type(exc).__name__,
                    "; retrying" if retry else "",
                )
                if not retry:
                    raise
                ambiguous_before = ambiguous_before or verdict.carried_out == "maybe"
                await self.config.clock.sleep(_retry.backoff(attempt))
                attempt += 1
                continue

            pacer.observe(self._capped_rate_headers(resp_headers))
            if 200 <= status < 300:
                logger.debug(
                    "%s %s -> %d (attempt %d, waited %.3fs)", op.method, op.path, status, attempt + 1, waited
                )
                parsed = self._decode_success(op, status, resp_headers, raw)
                return self._raw(status, resp_headers, parsed, attempt)

            if status == 404 and (op.not_found_as_none or (op.method == "DELETE" and ambiguous_before)):
                # A DELETE whose earlier attempt may have gone through: 404 means it is gone.
                logger.debug("%s %s -> 404 taken as success", op.method, op.path)
                return self._raw(status, resp_headers, None, attempt)  # type: ignore[arg-type]

            error = self._error(status, resp_headers, raw)
            verdict = judge(status, idempotent=op.idempotent)
            retry_after = error.retry_after if isinstance(error, RateLimitError) else None
            if retry_after is not None and retry_after > self.config.max_retry_wait:
                logger.warning(
                    "%s %s -> 429, Retry-After %.0fs is past max_retry_wait (%gs)",
                    op.method,
                    op.path,
                    retry_after,
                    self.config.max_retry_wait,
                )
                # The other tasks of the client pause too, but never longer than the longest
                # wait the user allows: an absurd Retry-After (a day, a date in 9999, inf) must
                # not freeze the client.
                await self._cool_down(self.config.max_retry_wait)
                raise error
            if not verdict.retry or attempt >= self.config.max_retries:
                logger.info("%s %s -> %d (attempt %d, not retried)", op.method, op.path, status, attempt + 1)
                raise error
            ambiguous_before = ambiguous_before or verdict.carried_out == "maybe"
            if status == 429:
                # Every task of this client waits out the same cool-down (no thundering herd);
                # the next acquire() does the waiting.
                await self._cool_down(retry_after if retry_after is not None else _retry.backoff(attempt))
                wait = 0.0
            else:
                wait = _retry.backoff(attempt)
            logger.info(STATUS_RETRIED, op.method, op.path, status, attempt + 1, wait)
            if wait:
                await self.config.clock.sleep(wait)
            attempt += 1

    # -- rate-limit waits: every one bounded by max_retry_wait --------------------------------

    async def _cool_down(self, seconds: float) -> None:
        await self.pacer.cool_down(min(seconds, self.config.max_retry_wait))

    def _fail_fast_if_cooling_down(self) -> None:
        """Raise instead of waiting when the shared cool-down outlasts this call's max_retry_wait
        (a client from ``with_options``, or another worker, may allow less than the one that
        saw the 429)."""
        left = self.pacer.cool_down_left()
        if left > self.config.max_retry_wait:
            raise RateLimitError(
                f"the client is cooling down after a 429 for another {left:.1f}s, longer than "
                f"max_retry_wait ({self.config.max_retry_wait:g}s); nothing was sent",
                retry_after=left,
                status=429,
                error="Rate limit exceeded",
            )

    def _capped_rate_headers(self, headers: Mapping[str, str]) -> Mapping[str, str]:
        """The headers for the limiter, made unable to stall it: a negative
        ``X-RateLimit-Remaining`` counts as 0 (a token debt of a billion would mean waiting for
        years), and an exhausted window's ``X-RateLimit-Reset`` is pulled in to ``max_retry_wait``."""
        remaining = headers.get("X-RateLimit-Remaining")
        if remaining is None:
            return headers
        try:
            left = float(remaining)
        except ValueError:
            return headers
        fixes: dict[str, str] = {}
        if left < 0:
            fixes["X-RateLimit-Remaining"] = "0"
        reset = headers.get("X-RateLimit-Reset")
        if left <= 0 and reset is not None:
            try:
                wait = float(reset) - time.time()
            except ValueError:
                wait = math.nan
            if not math.isnan(wait):
                cap = self.config.max_retry_wait
                if wait > cap:
                    fixes["X-RateLimit-Reset"] = str(math.floor(time.time() + cap))
        if not fixes:
            return headers
        capped = CIMultiDict(headers)
        capped.update(fixes)
        return capped

    # -- the HTTP exchange --------------------------------------------------------------------

    async def _send(
        self,
        session: aiohttp.ClientSession,
        op: Operation[Any],
        url: URL,
        headers: Mapping[str, str],
        data: bytes | None,
        timeout: aiohttp.ClientTimeout,
        attempt: int,
    ) -> tuple[int, Mapping[str, str], bytes]:
        # aiohttp's exceptions carry the request (headers included, so the API key): ours are
        # raised after the except blocks, so that neither __cause__ nor __context__ holds them.
        method = op.method
        shared = self._shared
        error: APIConnectionError
        try:
            async with session.request(
                method,
                url,
                headers=headers,
                data=data,
                timeout=timeout,
                allow_redirects=False,
                middlewares=() if shared.repeats_off else (_single_pass(), *_session_middlewares(session)),
                # What the session's TraceConfig callbacks see as `trace_config_ctx.trace_request_ctx`:
                # the operation names the endpoint without the ids in its URL (a low-cardinality
                # label for metrics), the attempt tells retries apart.
                trace_request_ctx=(
                    types.MappingProxyType({"operation": op.id, "attempt": attempt})
                    if session.trace_configs
                    else None
                ),
            ) as resp:
                raw = await self._read_capped(resp, method, url)
                return resp.status, resp.headers, raw
        except aiohttp.ClientConnectorError as exc:
            # The TCP/TLS connection was never established: nothing was sent.
            self._defuse(exc)
            error = APIConnectionError(
                self._redact(f"cannot connect to {url.host}: {exc.os_error or exc}"),
                method=method,
                url=str(url),
                sent=False,
            )
        except aiohttp.ConnectionTimeoutError:
            error = APITimeoutError(
                f"connecting to {url.host} timed out", method=method, url=str(url), sent=False
            )
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
            error = APITimeoutError(
                f"{method} {url.path} timed out after {timeout.total:g}s; the server may have processed it",
                method=method,
                url=str(url),
            )
        except aiohttp.ClientResponseError as exc:
            # An answer aiohttp could not parse (garbage status line, oversized headers).
            self._defuse(exc)
            error = APIConnectionError(
                self._redact(
                    f"{method} {url.path} got an invalid HTTP response ({type(exc).__name__}: "
                    f"{exc.message}); the server may have processed it"
                ),
                method=method,
                url=str(url),
            )
        except RuntimeError:
            if not session.closed:
                raise
            # Closed by another task while this request was on its way.
            error = ClientClosedError(
                "the client was closed while this request was being sent; nothing was sent",
                method=method,
                url=str(url),
                sent=False,
            )
        except (aiohttp.ClientError, OSError) as exc:
            self._defuse(exc)
            error = APIConnectionError(
                self._redact(
                    f"{method} {url.path} failed: {type(exc).__name__}: {exc}; the server may have processed it"
                ),
                method=method,
                url=str(url),
            )
        raise error

    async def _read_capped(self, resp: aiohttp.ClientResponse, method: str, url: URL) -> bytes:
        """The body, read no further than ``max_response_bytes`` (after decompression)."""
        limit = self.config.max_response_bytes
        size = resp.content_length
        if size is not None and size <= limit and "Content-Encoding" not in resp.headers:
            # The length is known and nothing is decompressed: the body is exactly that size
            # (aiohttp reads no further), so one read is within the cap.
            return await resp.read()
        if size is None or size <= limit:
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.content.iter_any():
                size += len(chunk)
                if size > limit:
                    break
                chunks.append(chunk)
            else:
                return b"".join(chunks)
        # Drop the connection rather than drain the rest of the body.
        resp.close()
        headers, _ = self._scrub(resp.headers)
        raise ResponseTooLargeError(
            f"{method} {url.path}: the response body is larger than max_response_bytes ({limit} bytes); "
            "reading stopped there (the server may have processed the request)",
            status=resp.status,
            limit=limit,
            headers=headers,
            request_id=headers.get("X-Request-Id"),
        )

    def _redact(self, text: str) -> str:
        """``text`` with the API key blanked out (a hostile server may echo it back)."""
        return text.replace(self.config.api_key, "***")

    def _defuse(self, exc: BaseException) -> None:
        """Blank the API key out of aiohttp's exception and everything chained to it.

        Ours are raised outside the except blocks so that they do not chain aiohttp's; but on
        Python 3.10 the exception aiohttp received can stay "being handled" in the task after
        the request returns, and become the ``__context__`` of an unrelated later exception.
        Redacting it in place makes such a leak harmless.
        """
        key = self.config.api_key
        stack: list[BaseException | None] = [exc]
        seen: list[BaseException] = []
        while stack:
            item = stack.pop()
            if item is None or any(item is other for other in seen):
                continue
            seen.append(item)
            item.args = tuple(self._redact(a) if isinstance(a, str) else a for a in item.args)
            for name, value in list(getattr(item, "__dict__", {}).items()):
                if isinstance(value, str) and key in value:
                    setattr(item, name, self._redact(value))
            stack += [item.__cause__, item.__context__]

    @staticmethod
    def _raw(status: int, headers: Mapping[str, str], parsed: T, attempt: int) -> RawResponse[T]:
        return RawResponse(status, headers, parsed, attempt + 1)

    # -- decoding -----------------------------------------------------------------------------

    def _decode_success(self, op: Operation[T], status: int, headers: Mapping[str, str], raw: bytes) -> T:
        if op.returns_none:
            return None  # type: ignore[return-value]
        problem: str | None = None
        try:
            data = _json.loads(raw) if raw else None
        except RecursionError:
            problem = "the response JSON is nested too deeply"
        except ValueError as exc:
            if raw.strip():
                problem = f"the response is not JSON ({exc})"
            data = None
        if problem is not None:
            raise self._invalid(f"{op.id}: {problem}", status, headers, raw)
        if op.bare_array_key is not None and isinstance(data, list):
            data = {op.bare_array_key: data}
        if op.unwrap is not None and data is not None:
            if not isinstance(data, dict):
                raise self._invalid(f"{op.id}: expected a JSON object", status, headers, raw)
            for key in (op.unwrap, *op.unwrap_aliases):
                if key in data:
                    data = data[key]
                    break
            else:
                if not op.unwrap_bare:
                    raise self._invalid(
                        f"{op.id}: the response has no {op.unwrap!r} key", status, headers, raw
                    )
        try:
            if op.defer_items:
                return cast(T, self._defer_items(op, data, status, headers, raw))
            tp = op.result_type
            hook = self._decoders.get(tp)
            if hook is None:
                hook = self._decoders[tp] = decoder_of(tp, strict=self.config.strict_responses)
            return cast(T, hook(data, tp))
        except DecodeError as exc:
            problem = f"the response does not match the spec: {exc}"
        except RecursionError:
            problem = "the response is nested too deeply"
        raise self._invalid(f"{op.id}: {problem}", status, headers, raw)

    def _defer_items(
        self, op: Operation[Any], data: Any, status: int, headers: Mapping[str, str], raw: bytes
    ) -> DeferredItems:
        """The page decoded around its items, which stay parsed JSON (see DeferredItems)."""
        strict = self.config.strict_responses
        assert op.items is not None
        field = attrs.fields_dict(attrs.resolve_types(op.result_type))[op.items]
        wire = field.metadata.get(WIRE, field.name)
        (item_type,) = typing.get_args(field.type)
        decode_rows: Callable[[list[Any]], list[Any]]
        if type(data) is dict and type(data.get(wire)) is list:
            rows = data[wire]
            response = decode({**data, wire: []}, op.result_type, strict=strict)
            decode_row = decoder_of(item_type, strict=strict)
            list_type, decode_list = field.type, decoder_of(field.type, strict=strict)

            def decode_rows(chunk: list[Any]) -> list[Any]:
                return cast("list[Any]", decode_list(chunk, list_type))
        else:  # an unusual shape (another spelling of the key, ...): decoded as a whole
            response = decode(data, op.result_type, strict=strict)
            rows = getattr(response, op.items)
            decode_row, decode_rows = _already_decoded, _rows_already_decoded

        def invalid(index: int, exc: Exception) -> Exception:
            if isinstance(exc, DecodeError):
                exc.parts[:0] = [wire, index]
            return self._invalid(
                f"{op.id}: the response does not match the spec: {exc}", status, headers, raw
            )

        return DeferredItems(
            response=response,
            rows=rows,
            item_type=item_type,
            decode_row=decode_row,
            decode_rows=decode_rows,
            invalid=invalid,
        )

    def _invalid(
        self, message: str, status: int, headers: Mapping[str, str], raw: bytes
    ) -> APIResponseValidationError:
        headers, raw = self._scrub(headers, raw)
        return APIResponseValidationError(
            message,
            status=status,
            body=raw.decode("utf-8", "replace"),
            headers=headers,
            request_id=headers.get("X-Request-Id"),
        )

    def _error(self, status: int, headers: Mapping[str, str], raw: bytes) -> APIStatusError:
        headers, raw = self._scrub(headers, raw)
        return build_status_error(status, headers, raw)

    def _scrub(self, headers: Mapping[str, str], raw: bytes = b"") -> tuple[Mapping[str, str], bytes]:
        """Headers and body for an exception, with the API key blanked out: a server that echoes
        the request back must not plant the key in an exception (and from there in a log)."""
        key = self.config.api_key
        secret = key.encode()
        if secret in raw:
            raw = raw.replace(secret, b"***")
        if any(key in name or key in value for name, value in headers.items()):
            headers = CIMultiDict(
                (name.replace(key, "***"), value.replace(key, "***")) for name, value in headers.items()
            )
        return headers, raw


def _already_decoded(value: Any, _: Any) -> Any:
    return value


def _rows_already_decoded(rows: list[Any]) -> list[Any]:
    return rows


def _merged_body(op: Operation[Any], body: Any, extra: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object of ``body`` with the ``extra_body`` keys over it."""
    if op.method == "GET":
        raise RequestValidationError("extra_body", f"{op.id} is a GET request: it sends no body")
    base = encode(body) if body is not None else {}
    if not isinstance(base, dict):
        raise RequestValidationError("extra_body", f"the body of {op.id} is not a JSON object")
    return {**base, **extra}


def _session_middlewares(session: aiohttp.ClientSession) -> tuple[Any, ...]:
    # Per-request middlewares replace the session's own; keep those of a session the user gave.
    # aiohttp exposes them only as this attribute.
    return tuple(getattr(session, "_middlewares", ()) or ())


def _retry_after_from_body(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return _retry.wait_seconds(float(value))
    except OverflowError:  # an integer too large for a float: "never"
        return math.inf


def build_status_error(
    status: int, headers: Mapping[str, str], raw: bytes, reason: str | None = None
) -> APIStatusError:
    """Decode an error body in any of the three documented shapes into the matching exception."""
    text = raw.decode("utf-8", "replace")
    body: Any = text
    error = code = param = None
    message = None
    details: list[str] = []
    try:
        body = _json.loads(raw) if raw.strip() else None
    except (ValueError, RecursionError):
        pass
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, str):  # flat shape
            error = err
            message = body.get("message") if isinstance(body.get("message"), str) else None
        elif isinstance(err, dict):  # nested shape
            code = err.get("code") if isinstance(err.get("code"), str) else None
            message = err.get("message") if isinstance(err.get("message"), str) else None
            param = err.get("param") if isinstance(err.get("param"), str) else None
            error = code
        raw_details = body.get("details")
        if isinstance(raw_details, list):
            details = [d if isinstance(d, str) else json.dumps(d) for d in raw_details]
    if not isinstance(body, (dict, list)) and text.strip():
        # A proxy's error page says what it is in its <title>; the page itself (kept whole in
        # ``body``) is only noise in a message.
        page = _html_title(text)
        if page is not None:
            logger.debug("HTTP %d with an HTML body: %s", status, text[:4096])
        snippet = page if page is not None else " ".join(text.split())[:200]
        message = message or snippet or None
    text_message = message or error or reason or _reason(status)
    if error and message and error != message and code is None:
        text_message = f"{error}: {message}"
    cls = error_class_for(status)
    kwargs: dict[str, Any] = dict(
        status=status,
        error=error,
        code=code,
        param=param,
        details=details,
        body=body,
        headers=headers,
        request_id=headers.get("X-Request-Id"),
    )
    if cls is RateLimitError:
        retry_after = parse_retry_after(headers.get("Retry-After"))
        if retry_after is None and isinstance(body, dict):
            retry_after = _retry_after_from_body(body.get("retry_after"))
        return RateLimitError(text_message, retry_after=retry_after, **kwargs)
    return cls(text_message, **kwargs)


_HIDDEN = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)


def _html_title(text: str) -> str | None:
    """For an HTML page: its title without a leading copy of the status code, or for a page
    without a title its text when that is short ("" otherwise); ``None`` for text that is no
    HTML page."""
    head = text.lstrip()[:512].lower()
    if not head.startswith(("<!doctype html", "<html", "<head", "<body", "<title", "<!--", "<?xml")):
        return None
    found = _TITLE.search(text, 0, 65536)
    if found is None:
        words = " ".join(_TAG.sub(" ", _HIDDEN.sub(" ", text[:4096])).split())
        return html.unescape(words) if len(words) <= 120 else ""
    title = html.unescape(" ".join(found.group(1).split()))
    return re.sub(r"^\d{3}\s+", "", title)[:200]


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"
