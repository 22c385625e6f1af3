"""``AsyncFlireo``: the client object users create."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
import attrs

from ._clock import Clock
from ._config import DEFAULT_MAX_RESPONSE_BYTES, ClientConfig
from ._errors import FlireoError
from ._generated.resources import RawResources, Resources
from ._logging import setup_from_env
from ._operation import Operation
from ._options import RequestOptions, merge_headers
from ._ratelimit import LocalRateLimiter, RateLimiter
from ._response import RawResponse
from ._transport import Transport
from .resources import CallsResource

__all__ = ["AsyncFlireo"]

T = TypeVar("T")
_KEEP: Any = object()


class AsyncFlireo(Resources):
    """Async client of the Flireo API.

    Use it as ``async with AsyncFlireo() as client:`` (or call :meth:`close`); a closed client
    raises :class:`~flireo_async.ClientClosedError`. A client belongs to the event loop it is
    first used in (another loop gets :class:`~flireo_async.EventLoopMismatchError`). Every
    setting has a visible default and can be overridden for one call with :meth:`with_options`.
    Every resource method also takes the per-call options ``timeout=``, ``extra_headers=``,
    ``extra_query=`` and ``extra_body=`` (see its docstring). The settings:

    - ``api_key``: your key; default the ``FLIREO_API_KEY`` environment variable. A missing key,
      or one with whitespace or control characters, raises at construction (the error says
      what is wrong, never what the key is). It is never logged or shown in a repr.
    - ``base_url``: default ``FLIREO_BASE_URL`` or ``https://api.flireo.com/api/v1``. Plain
      ``http://`` is refused unless the host is loopback.
    - ``timeout``: seconds for one HTTP attempt (default 30). Waiting for a rate-limit token or
      a concurrency slot is not counted.
    - ``max_retries``: extra attempts after a retryable failure (default 2). GET, PATCH and
      DELETE retry on connection errors, timeouts, 408, 429 and 5xx; POST only on 429 or when
      the connection was refused before anything was sent (``calls.create`` included: a person
      is never dialled twice by a retry).
    - ``max_concurrency``: requests in flight at once (default 16).
    - ``rate_limit``: requests per minute paced on the client (default 100, the API's limit;
      ``None`` turns pacing off). Call control is also paced at the API's 10 per minute per call.
    - ``prefetch``: pages fetched ahead by paginators (default 2).
    - ``max_retry_wait``: the longest the client waits by itself after a 429 or an exhausted
      rate-limit window (default 60 s). A longer ``Retry-After`` raises
      :class:`~flireo_async.RateLimitError` at once, and the cool-down it imposes on the other
      tasks of the client is capped at this value.
    - ``strict_responses``: ``False`` (default) decodes responses leniently: a field the API
      reference requires but a response leaves out decodes as ``UNSET`` instead of failing the
      call or the page (logged once per model and field at debug level). ``True`` raises
      :class:`~flireo_async.APIResponseValidationError` instead (use it in tests against the
      fake server).
    - ``max_response_bytes``: the largest response body read (default 32 MiB); a larger one
      raises :class:`~flireo_async.ResponseTooLargeError` without being read further.
    - ``rate_limiter``: who enforces ``rate_limit``. The default
      :class:`~flireo_async.LocalRateLimiter` paces this process only; several processes or
      hosts on one API key share one budget with
      :class:`flireo_async.fleet.RedisRateLimiter`.
    - ``default_headers``: headers sent with every request (a call's ``extra_headers`` go over
      them). ``Authorization`` is refused: the client always sends its ``api_key``.
    - ``session``: your own ``aiohttp.ClientSession`` (its connector, proxy, ``trust_env``,
      trace configs); the client then never closes it.
    - ``trace_configs``: ``aiohttp.TraceConfig`` objects for the session the client creates
      (metrics, OpenTelemetry); with ``session=``, give them to your session instead. Each
      HTTP attempt is traced; ``trace_config_ctx.trace_request_ctx`` holds the operation id
      (``"getCall"``) and the attempt number.
    - ``clock``: what the client waits with (``monotonic()`` and ``async sleep()``): backoff,
      pacing and cool-downs. Tests pass a virtual clock to check waits without spending them.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 2,
        max_concurrency: int = 16,
        rate_limit: int | None = 100,
        prefetch: int = 2,
        max_retry_wait: float = 60.0,
        strict_responses: bool = False,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        rate_limiter: RateLimiter | None = None,
        default_headers: Mapping[str, str] | None = None,
        session: aiohttp.ClientSession | None = None,
        trace_configs: Sequence[aiohttp.TraceConfig] | None = None,
        clock: Clock | None = None,
    ) -> None:
        setup_from_env()
        extra: dict[str, Any] = {}
        if clock is not None:
            extra["clock"] = clock
            if rate_limiter is None:
                rate_limiter = LocalRateLimiter(clock=clock)
        if rate_limiter is not None:
            extra["rate_limiter"] = rate_limiter
        if default_headers is not None:
            extra["default_headers"] = default_headers
        config = ClientConfig.from_env(
            api_key,
            base_url,
            timeout=timeout,
            max_retries=max_retries,
            max_concurrency=max_concurrency,
            rate_limit=rate_limit,
            prefetch=prefetch,
            max_retry_wait=max_retry_wait,
            strict_responses=strict_responses,
            max_response_bytes=max_response_bytes,
            **extra,
        )
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise FlireoError(f"session must be an aiohttp.ClientSession, got a {type(session).__name__}")
        if trace_configs is not None:
            if session is not None:
                raise FlireoError(
                    "trace_configs apply to the session the client creates: with session=..., "
                    "pass them to aiohttp.ClientSession(trace_configs=...) instead"
                )
            if isinstance(trace_configs, aiohttp.TraceConfig) or not all(
                isinstance(t, aiohttp.TraceConfig) for t in trace_configs
            ):
                raise FlireoError("trace_configs must be a list of aiohttp.TraceConfig")
        self._init(Transport(config, session=session, trace_configs=trace_configs))

    calls: CallsResource
    """Call history, outbound calls, live call control, and bulk launches (``create_many``)."""

    def _init(self, transport: Transport) -> None:
        self._transport = transport
        self._bind_resources(self)
        # The generated calls resource, with the bulk launcher attached from this side.
        self.calls = CallsResource(self)

    @classmethod
    def _from_transport(cls, transport: Transport) -> AsyncFlireo:
        client = cls.__new__(cls)
        client._init(transport)
        return client

    @property
    def config(self) -> ClientConfig:
        """The settings in force for this client."""
        return self._transport.config

    @functools.cached_property
    def with_raw_response(self) -> RawResources:
        """The same resources, returning :class:`~flireo_async.RawResponse` (status, headers,
        request id, rate-limit state and the parsed model): ``await client.with_raw_response.calls.get(id)``."""
        return RawResources(self)

    def with_options(
        self,
        *,
        api_key: str = _KEEP,
        base_url: str = _KEEP,
        timeout: float = _KEEP,
        max_retries: int = _KEEP,
        max_concurrency: int = _KEEP,
        rate_limit: int | None = _KEEP,
        prefetch: int = _KEEP,
        max_retry_wait: float = _KEEP,
        strict_responses: bool = _KEEP,
        max_response_bytes: int = _KEEP,
        rate_limiter: RateLimiter = _KEEP,
        default_headers: Mapping[str, str] = _KEEP,
    ) -> AsyncFlireo:
        """A client with some settings changed, for one call or a group of calls:
        ``await client.with_options(timeout=5, max_retries=0).calls.get(call_id)``.

        It shares this client's HTTP session (closing this client closes it for the derived one
        too; closing the derived one closes nothing). It also shares the pacing (unless
        ``api_key``, ``base_url``, ``rate_limit`` or ``rate_limiter`` change) and the concurrency gate (unless
        ``max_concurrency`` changes), so derived clients do not multiply the limits.
        ``default_headers`` are added over this client's own (a header of the same name, in any
        case, is replaced).
        """
        changes: dict[str, Any] = {
            k: v
            for k, v in dict(
                api_key=api_key,
                base_url=base_url,
                timeout=timeout,
                max_retries=max_retries,
                max_concurrency=max_concurrency,
                rate_limit=rate_limit,
                prefetch=prefetch,
                max_retry_wait=max_retry_wait,
                strict_responses=strict_responses,
                max_response_bytes=max_response_bytes,
                rate_limiter=rate_limiter,
                default_headers=default_headers,
            ).items()
            if v is not _KEEP
        }
        if isinstance(changes.get("base_url"), str):
            changes["base_url"] = changes["base_url"].rstrip("/")
        old = self._transport
        if isinstance(changes.get("default_headers"), Mapping):
            changes["default_headers"] = merge_headers(old.config.default_headers, changes["default_headers"])
        config = attrs.evolve(old.config, **changes)
        same_pacing = (
            config.api_key == old.config.api_key
            and config.base_url == old.config.base_url
            and config.rate_limit == old.config.rate_limit
            and config.rate_limiter is old.config.rate_limiter
        )
        transport = Transport(
            config,
            shared=old.shared,
            pacer=old.pacer if same_pacing else None,
            gate=old.gate if config.max_concurrency == old.config.max_concurrency else None,
        )
        return AsyncFlireo._from_transport(transport)

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
        """Execute a generated operation (used by the resources; rarely called directly).

        ``before_send`` is awaited once, right before the request first goes on the wire
        (after pacing); if it raises, nothing is sent. ``options`` are the per-call options.
        """
        return await self._transport.request(
            op, path=path, query=query, body=body, before_send=before_send, options=options
        )

    async def close(self) -> None:
        """Close the HTTP session (when the client created it); later calls raise
        :class:`~flireo_async.ClientClosedError`."""
        await self._transport.close()

    async def __aenter__(self) -> AsyncFlireo:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncFlireo(base_url={self.config.base_url!r})"
