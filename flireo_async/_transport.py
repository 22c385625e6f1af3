"""One API call over HTTP: pacing, the concurrency gate, retries, error mapping and decoding.

Nothing here knows a particular endpoint: what to unwrap, whether a POST is safe to repeat and
which extra limits apply all come from the generated :class:`~flireo_async._operation.Operation`.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, cast
from urllib.parse import quote

import aiohttp
from yarl import URL

from . import __version__
from ._config import ClientConfig
from ._convert import DecodeError, decode, encode, format_datetime
from ._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    RateLimitError,
    RequestValidationError,
    error_class_for,
)
from ._logging import logger
from ._operation import Operation
from ._ratelimit import Pacer
from ._response import RawResponse
from ._types import UnsetType, key_fingerprint

__all__ = ["Transport", "RETRYABLE_STATUSES", "backoff"]

T = TypeVar("T")

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""Statuses after which an idempotent request is repeated."""
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
USER_AGENT = (
    f"flireo-async/{__version__} python/{sys.version_info[0]}.{sys.version_info[1]} "
    f"aiohttp/{aiohttp.__version__}"
)


def backoff(attempt: int) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(8, 0.5 * 2**attempt)] seconds."""
    return random.uniform(0.0, min(BACKOFF_CAP, BACKOFF_BASE * (2**attempt)))


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return format_datetime(value)
    return str(value)


class Transport:
    """Executes operations for one client configuration; shares its session and limits."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        session: aiohttp.ClientSession | None = None,
        pacer: Pacer | None = None,
        gate: asyncio.Semaphore | None = None,
    ) -> None:
        self.config = config
        self._session = session
        self._owns_session = session is None
        self._owns_pacer = pacer is None
        self.pacer = pacer or config.rate_limiter.pacer(key_fingerprint(config.api_key), config.rate_limit)
        self.gate = gate or asyncio.Semaphore(config.max_concurrency)
        self._base = URL(config.base_url + "/", encoded=False)
        self._base_text = config.base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=config.timeout)
        self._urls: dict[tuple[str, tuple[str, ...]], URL] = {}
        self._headers = {
            "Authorization": f"Bearer {config.api_key}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }

    # -- session lifecycle --------------------------------------------------------------------

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, json_serialize=json.dumps)
            self._owns_session = True
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._owns_session and not self._session.closed:
            await self._session.close()
        if self._owns_pacer:
            await self.pacer.aclose()

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
            if not isinstance(value, str) or not value:
                arg = op.path_names[index] if index < len(op.path_names) else name
                raise RequestValidationError(arg, f"must be a non-empty string, got {value!r}")
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
    ) -> RawResponse[T]:
        """Send one operation, with pacing, retries and decoding.

        ``before_send`` is awaited once, after pacing and just before the request first goes
        on the wire; if it raises, nothing is sent and the exception propagates. The bulk
        launcher records "this lead is being dialed" there, so that a crash while a request
        waits for its turn never leaves a lead looking as if it might have been dialed.
        """
        url = self.build_url(op, path)
        if query:
            params = {k: _query_value(v) for k, v in query.items() if not isinstance(v, UnsetType)}
            if params:
                url = url.update_query(params)
        headers = self._headers
        data: bytes | None = None
        if body is not None:
            data = json.dumps(encode(body), separators=(",", ":")).encode()
            headers = {**headers, "Content-Type": "application/json"}
        key = None
        if op.per_key_limit is not None:
            key = f"{op.id}:{path[op.path_params.index(op.per_key_limit.key_param)]}"

        pacer = self.pacer
        attempt = 0
        ambiguous_before = False
        while True:
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
                        waited += await pacer.acquire()
                    if before_send is not None:
                        hook, before_send = before_send, None
                        await hook()
                    status, resp_headers, raw = await self._send(op.method, url, headers, data)
            except APIConnectionError as exc:
                retry = attempt < self.config.max_retries and (op.idempotent or not exc.sent)
                logger.info(
                    "%s %s failed on attempt %d: %s%s",
                    op.method,
                    op.path,
                    attempt + 1,
                    type(exc).__name__,
                    "; retrying" if retry else "",
                )
                if not retry:
                    raise
                ambiguous_before = ambiguous_before or exc.sent
                await asyncio.sleep(backoff(attempt))
                attempt += 1
                continue

            pacer.observe(resp_headers)
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
            retryable = status == 429 or (op.idempotent and status in RETRYABLE_STATUSES)
            if status == 429:
                retry_after = error.retry_after if isinstance(error, RateLimitError) else None
                if retry_after is not None and retry_after > self.config.max_retry_wait:
                    logger.warning(
                        "%s %s -> 429, Retry-After %.0fs is past max_retry_wait",
                        op.method,
                        op.path,
                        retry_after,
                    )
                    await pacer.cool_down(min(retry_after, self.config.max_retry_wait))
                    raise error
            if not retryable or attempt >= self.config.max_retries:
                logger.info("%s %s -> %d (attempt %d, not retried)", op.method, op.path, status, attempt + 1)
                raise error
            ambiguous_before = ambiguous_before or status != 429
            if status == 429:
                retry_after = error.retry_after if isinstance(error, RateLimitError) else None
                # Every task of this client waits out the same cool-down (no thundering herd);
                # the next acquire() does the waiting.
                await pacer.cool_down(retry_after if retry_after is not None else backoff(attempt))
                wait = 0.0
            else:
                wait = backoff(attempt)
            logger.info(
                "%s %s -> %d (attempt %d), retrying in %.2fs", op.method, op.path, status, attempt + 1, wait
            )
            if wait:
                await asyncio.sleep(wait)
            attempt += 1

    async def _send(
        self, method: str, url: URL, headers: Mapping[str, str], data: bytes | None
    ) -> tuple[int, Mapping[str, str], bytes]:
        try:
            async with self.session.request(
                method, url, headers=headers, data=data, timeout=self._timeout, allow_redirects=False
            ) as resp:
                raw = await resp.read()
                return resp.status, resp.headers, raw
        except aiohttp.ClientConnectorError as exc:
            # The TCP/TLS connection was never established: nothing was sent.
            raise APIConnectionError(
                f"cannot connect to {url.host}: {exc.os_error or exc}",
                method=method,
                url=str(url),
                sent=False,
            ) from exc
        except aiohttp.ConnectionTimeoutError as exc:
            raise APITimeoutError(
                f"connecting to {url.host} timed out", method=method, url=str(url), sent=False
            ) from exc
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise APITimeoutError(
                f"{method} {url.path} timed out after {self.config.timeout}s; the server may have processed it",
                method=method,
                url=str(url),
            ) from exc
        except aiohttp.ClientError as exc:
            raise APIConnectionError(
                f"{method} {url.path} failed: {type(exc).__name__}: {exc}; the server may have processed it",
                method=method,
                url=str(url),
            ) from exc

    @staticmethod
    def _raw(status: int, headers: Mapping[str, str], parsed: T, attempt: int) -> RawResponse[T]:
        return RawResponse(status, headers, parsed, attempt + 1)

    # -- decoding -----------------------------------------------------------------------------

    def _decode_success(self, op: Operation[T], status: int, headers: Mapping[str, str], raw: bytes) -> T:
        if op.returns_none:
            return None  # type: ignore[return-value]
        try:
            data = json.loads(raw) if raw else None
        except ValueError as exc:
            if raw.strip():
                raise self._invalid(
                    f"{op.id}: the response is not JSON ({exc})", status, headers, raw
                ) from exc
            data = None
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
            return cast(T, decode(data, op.result_type))
        except DecodeError as exc:
            raise self._invalid(
                f"{op.id}: the response does not match the spec: {exc}", status, headers, raw
            ) from exc

    @staticmethod
    def _invalid(
        message: str, status: int, headers: Mapping[str, str], raw: bytes
    ) -> APIResponseValidationError:
        return APIResponseValidationError(
            message,
            status=status,
            body=raw.decode("utf-8", "replace"),
            headers=headers,
            request_id=headers.get("X-Request-Id"),
        )

    @staticmethod
    def _error(status: int, headers: Mapping[str, str], raw: bytes) -> APIStatusError:
        return build_status_error(status, headers, raw)


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
        body = json.loads(raw) if raw.strip() else None
    except ValueError:
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
            details = [str(d) for d in raw_details]
    if not isinstance(body, (dict, list)) and text.strip():
        snippet = " ".join(text.split())[:200]
        message = message or snippet
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
        if (
            retry_after is None
            and isinstance(body, dict)
            and isinstance(body.get("retry_after"), (int, float))
        ):
            retry_after = float(body["retry_after"])
        return RateLimitError(text_message, retry_after=retry_after, **kwargs)
    return cls(text_message, **kwargs)


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"
