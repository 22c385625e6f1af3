"""The bulk launcher behind ``client.calls.create_many``.

``POST /calls/outbound`` dials a real person and the API has no idempotency key, so every lead
ends in exactly one of four outcomes:

- ``launched``: the API answered with a call id.
- ``failed``: certainly not dialed (invalid request, a 4xx answer, a 429 after the client's
  retries, a connection refused before anything was sent, or the launch stopped before its
  turn). A later run sends it again.
- ``unknown``: may have been dialed (timeout, dropped connection, 5xx, a 2xx whose body does
  not match the spec). Never sent again automatically; check ``GET /calls``.
- ``duplicate``: the same lead (same identity) appeared earlier in the input; only the first
  is dialed.

A launch store (:mod:`flireo_async.bulk._store`) decides whether each lead may be dialed now;
the launcher asks it before every dial and records the outcome after.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol, Union, cast

import attrs

from .._convert import DecodeError, decode, encode
from .._errors import FlireoError, RequestValidationError
from .._generated.models import OutboundCallRequest
from .._generated.operations import CREATE_OUTBOUND_CALL
from .._logging import logger
from .._retry import failure_of, judge
from .._transport import EncodedBody, encode_body
from .._types import key_fingerprint
from ._identity import E164, content_identity, key_identity, legacy_digest, normalize_destination
from ._journal import FileLaunchStore
from ._store import (
    Busy,
    Claim,
    ClaimLostError,
    Duplicate,
    Granted,
    LaunchStore,
    LaunchStoreError,
    Lead,
    Settled,
)

if TYPE_CHECKING:
    import os

    from .._resource import Requester

__all__ = [
    "BulkCallsMixin",
    "LaunchResult",
    "LaunchStatus",
    "OutboundRequestLike",
    "UnknownOutcomeError",
    "RecordedFailureError",
    "launch_outcome",
]


LaunchStatus = Literal["launched", "failed", "unknown", "duplicate"]
"""The outcome of one outbound-call request in a bulk launch."""

OutboundRequestLike = Union[OutboundCallRequest, Mapping[str, Any]]
"""An :class:`~flireo_async.models.OutboundCallRequest` or a dict of its wire names."""

LeadKey = Callable[[Any], object]
"""Maps an input request to the caller's key for it (a string or an integer)."""

_POLL_FIRST = 0.2
_POLL_MAX = 2.0


class UnknownOutcomeError(FlireoError):
    """The request may or may not have been carried out, and no better error is at hand.

    Used for requests interrupted while in flight (cancellation, a crash found on resume), for
    unknown outcomes read back from a launch store, and for a 2xx answer that says
    ``success: false``.
    """


class RecordedFailureError(FlireoError):
    """A failure read back from the launch store (recorded by an earlier run or another worker)."""


@attrs.frozen(kw_only=True)
class LaunchResult:
    """The outcome of one request of :meth:`BulkCallsMixin.create_many`.

    - ``index``: the request's position in the input (0-based); ``request``: what was given.
    - ``status``: launched, failed, unknown or duplicate (see :mod:`flireo_async.bulk`).
    - ``identity``: who the lead is for the launch store (a content hash, or ``key:<your key>``).
    - ``destination``: the normalised number dialed (``None`` when the request had none).
    - ``call_id``: set when launched; ``error``: why it failed or is unknown.
    - ``resumed``: the outcome was read from the store (an earlier run, or another worker of
      this run), not produced by a request sent by this call.
    - ``duplicate_of``: for ``duplicate``, the index of the first request with this identity.
    """

    index: int
    request: OutboundRequestLike
    status: LaunchStatus
    identity: str
    destination: str | None = None
    call_id: str | None = None
    error: Exception | None = None
    resumed: bool = False
    duplicate_of: int | None = None


def launch_outcome(error: BaseException, *, sent: bool = True) -> Literal["failed", "unknown"]:
    """Whether a failed ``calls.create`` certainly did not dial (``"failed"``) or may have (``"unknown"``).

    ``sent=False`` says the request never went on the wire (the launcher knows this when the
    failure came before its "sending" mark): then it is ``failed`` whatever the error.
    Otherwise the retry table of :mod:`flireo_async._retry` decides: ``failed`` when the server
    certainly did not act (invalid arguments, a connection refused before sending, a 4xx answer
    other than 408 — a 429 is refused before it is carried out), ``unknown`` for everything
    else (timeouts, dropped connections, 408, 5xx, a malformed 2xx body, errors the table does
    not know).
    """
    if not sent or isinstance(error, (RequestValidationError, LaunchStoreError)):
        return "failed"
    failure = failure_of(error)
    if failure is None:
        return "unknown"
    return "failed" if judge(failure, idempotent=False).carried_out == "no" else "unknown"


def describe_error(error: BaseException) -> str:
    """``"ErrorType: message"`` for records and reports."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# -- one input request -----------------------------------------------------------------------------


@attrs.frozen
class _Item:
    """One input request, normalised: the model to send, or why it cannot be sent."""

    index: int
    given: Any
    model: OutboundCallRequest | None
    invalid: RequestValidationError | None
    lead: Lead
    body: EncodedBody | None = None
    """The request's JSON, encoded once when the input is checked (None when invalid)."""

    def result(
        self,
        status: LaunchStatus,
        *,
        call_id: str | None = None,
        error: Exception | None = None,
        resumed: bool = False,
        duplicate_of: int | None = None,
    ) -> LaunchResult:
        return LaunchResult(
            index=self.index,
            request=self.given,
            status=status,
            identity=self.lead.identity,
            destination=self.lead.destination,
            call_id=call_id,
            error=error,
            resumed=resumed,
            duplicate_of=duplicate_of,
        )


def _given_destination(given: Any) -> str | None:
    value = given.get("destination") if isinstance(given, Mapping) else getattr(given, "destination", None)
    return normalize_destination(value) if isinstance(value, str) else None


def _prepare(index: int, given: Any, key: LeadKey | None, legacy: bool) -> _Item:
    """Validate one input request now, so that an invalid one is reported without being sent."""
    invalid: RequestValidationError | None = None
    model: OutboundCallRequest | None = None
    payload: Any = None
    body: EncodedBody | None = None
    try:
        decoded: OutboundCallRequest
        if isinstance(given, OutboundCallRequest):
            # Round-trip through the strict decoder: attrs does not check the types it is given.
            decoded = decode(encode(given), OutboundCallRequest)
        elif isinstance(given, Mapping):
            decoded = decode(dict(given), OutboundCallRequest)
        else:
            raise RequestValidationError(
                "", f"expected an OutboundCallRequest or a dict, got {type(given).__name__}"
            )
        payload = encode(decoded)
        destination = normalize_destination(decoded.destination)
        if not E164.match(destination):
            raise RequestValidationError(
                "destination",
                f"{decoded.destination!r} is not an E.164 phone number (+, country code and number, "
                "e.g. +31612345678)",
            )
        if destination != decoded.destination:
            decoded = attrs.evolve(cast(Any, decoded), destination=destination)
            payload["destination"] = destination
        body = EncodedBody(encode_body(payload, encoded=True))
        model = decoded
    except DecodeError as exc:
        invalid = RequestValidationError(exc.path, f"{exc.problem} (in OutboundCallRequest)")
        model = None
    except RequestValidationError as exc:
        invalid = exc
        model = None
    except (TypeError, ValueError) as exc:  # e.g. a dict whose values cannot be encoded
        invalid = RequestValidationError("", f"invalid OutboundCallRequest: {exc}")
        model = None

    identity: str
    if key is not None:
        try:
            identity = key_identity(key(given))
        except Exception as exc:
            invalid = invalid or RequestValidationError("key", f"no key for this request: {exc}")
            identity = f"invalid:{index}"
    elif model is not None:
        identity = content_identity(payload)
    else:
        identity = f"invalid:{index}"
    lead = Lead(
        identity=identity,
        index=index,
        destination=model.destination if model is not None else _given_destination(given),
        legacy=legacy_digest(payload) if legacy and model is not None else None,
    )
    return _Item(index, given, model, invalid, lead, body if model is not None else None)


# -- sending -----------------------------------------------------------------------------------------


class _CallsAPI(Protocol):
    """What :class:`BulkCallsMixin` needs from the resource class it is mixed into."""

    @property
    def _client(self) -> Requester: ...


@attrs.define
class _Done:
    """What a launch task hands back: the result, or the item to ask about again later."""

    item: _Item
    result: LaunchResult | None = None
    store_error: LaunchStoreError | None = None


async def _settle_quietly(
    store: LaunchStore, item: _Item, status: Any, **fields: Any
) -> LaunchStoreError | None:
    try:
        await store.settle(item.lead, status, **fields)
    except LaunchStoreError as exc:
        logger.error("%s: could not record %s for lead %d: %s", store.description, status, item.index, exc)
        return exc
    return None


async def _launch(calls: _CallsAPI, store: LaunchStore, item: _Item) -> _Done:
    assert item.model is not None
    sending = False

    async def mark() -> None:
        nonlocal sending
        await store.mark_sending(item.lead)
        sending = True

    assert item.body is not None
    try:
        # The body was encoded and checked once in _prepare: sent as those bytes, with no
        # second round-trip through the resource's validation.
        sent = await calls._client.request(CREATE_OUTBOUND_CALL, body=item.body, before_send=mark)
        response = sent.parsed
    except asyncio.CancelledError:
        # Sent (or maybe sent): unknown, never again. Not yet sent: give the lead back.
        if sending:
            await _settle_quietly(store, item, "unknown", error="cancelled while in flight")
        else:
            await _settle_quietly(store, item, "released")
        raise
    except ClaimLostError:
        return _Done(item)
    except Exception as exc:
        status = launch_outcome(exc, sent=sending)
        stored = await _settle_quietly(store, item, status, error=describe_error(exc))
        if isinstance(exc, LaunchStoreError):
            stored = stored or exc
        return _Done(item, item.result(status, error=exc), stored)
    if response.success is False:
        error = UnknownOutcomeError(f"the API answered success=false (call id {response.call_id!r})")
        stored = await _settle_quietly(store, item, "unknown", error=str(error))
        return _Done(item, item.result("unknown", call_id=response.call_id, error=error), stored)
    stored = await _settle_quietly(store, item, "launched", call_id=response.call_id)
    return _Done(item, item.result("launched", call_id=response.call_id), stored)


def _settled_result(item: _Item, settled: Settled) -> LaunchResult:
    error: Exception | None = None
    where = (
        f"lead {settled.index}" if settled.index is not None and settled.index != item.index else "this lead"
    )
    who = f" by {settled.worker}" if settled.worker else ""
    if settled.status == "unknown":
        error = UnknownOutcomeError(f"recorded{who} for {where}: {settled.error or 'outcome unknown'}")
    elif settled.status == "failed":
        error = RecordedFailureError(f"recorded{who} for {where}: {settled.error or 'failed'}")
    return item.result(settled.status, call_id=settled.call_id, error=error, resumed=True)


async def _iterate(requests: Iterable[Any] | AsyncIterable[Any]) -> AsyncGenerator[Any, None]:
    if isinstance(requests, AsyncIterable):
        async for item in requests:
            yield item
    else:
        for item in requests:
            yield item


async def launch_many(
    calls: _CallsAPI,
    requests: Iterable[Any] | AsyncIterable[Any],
    *,
    max_in_flight: int,
    store: LaunchStore,
    key: LeadKey | None,
) -> AsyncGenerator[LaunchResult, None]:
    """The engine of :meth:`BulkCallsMixin.create_many` (arguments already checked)."""
    await store.open(key_fingerprint(calls._client.config.api_key))
    legacy = bool(getattr(store, "has_legacy_records", False))
    pending: set[asyncio.Task[_Done]] = set()
    deferred: list[_Item] = []
    poll = _POLL_FIRST
    stop: LaunchStoreError | None = None

    def start(item: _Item, claim: Claim) -> LaunchResult | None:
        """Act on a claim: start a launch, or return the result to report now."""
        if isinstance(claim, Granted):
            pending.add(asyncio.ensure_future(_launch(calls, store, item)))
            return None
        if isinstance(claim, Duplicate):
            return item.result("duplicate", duplicate_of=claim.first_index)
        if isinstance(claim, Busy):
            deferred.append(item)
            return None
        return _settled_result(item, claim)

    loop = asyncio.get_running_loop()
    next_check = 0.0
    try:
        async with contextlib.aclosing(_iterate(requests)) as source:
            index = 0
            exhausted = False
            while True:
                while not exhausted and stop is None and len(pending) < max_in_flight:
                    try:
                        given = await source.__anext__()
                    except StopAsyncIteration:
                        exhausted = True
                        break
                    item = _prepare(index, given, key, legacy)
                    index += 1
                    if item.invalid is not None:
                        yield item.result("failed", error=item.invalid)
                        continue
                    try:
                        claim = await store.claim(item.lead)
                    except LaunchStoreError as exc:
                        stop = exc
                        yield item.result("failed", error=exc)
                        break
                    if isinstance(claim, Busy) and not deferred:
                        next_check = loop.time() + poll
                    now = start(item, claim)
                    if now is not None:
                        yield now
                if stop is not None:
                    deferred.clear()  # held by live workers; they report them
                if not pending and not deferred:
                    break
                timeout = max(0.0, next_check - loop.time()) if deferred else None
                if pending:
                    done, pending = await asyncio.wait(
                        pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                    )
                else:
                    await asyncio.sleep(timeout or 0.0)
                    done = set()
                for task in done:
                    outcome = task.result()
                    if outcome.store_error is not None:
                        stop = stop or outcome.store_error
                    if outcome.result is None:
                        deferred.append(outcome.item)  # another worker took it over
                    else:
                        yield outcome.result
                if deferred and stop is None and loop.time() >= next_check:
                    # Leads another live worker holds: ask again until they settle, or until
                    # the store hands them to us because that worker is gone.
                    again, deferred = deferred, []
                    for item in again:
                        try:
                            claim = await store.claim(item.lead)
                        except LaunchStoreError as exc:
                            stop = exc
                            yield item.result("failed", error=exc)
                            break
                        now = start(item, claim)
                        if now is not None:
                            yield now
                    poll = min(_POLL_MAX, poll * 2) if len(deferred) == len(again) else _POLL_FIRST
                    next_check = loop.time() + poll
        if stop is not None:
            raise stop
    finally:
        try:
            if pending:
                for task in pending:
                    task.cancel()
                # Let each cancelled launch record its outcome before the store closes.
                await asyncio.wait(pending)
        finally:
            await store.close()


class BulkCallsMixin:
    """Adds :meth:`create_many` to ``client.calls``."""

    def create_many(
        self: _CallsAPI,
        requests: Iterable[OutboundRequestLike] | AsyncIterable[OutboundRequestLike],
        *,
        max_in_flight: int | None = None,
        journal: str | os.PathLike[str] | None = None,
        store: LaunchStore | None = None,
        key: LeadKey | None = None,
    ) -> AsyncGenerator[LaunchResult, None]:
        """Launch many outbound calls; yield one :class:`LaunchResult` per request as each completes.

        ``requests`` is an iterable or async iterable of
        :class:`~flireo_async.models.OutboundCallRequest` models or dicts of wire names. It is
        read lazily: at most ``max_in_flight`` requests (default: the client's
        ``max_concurrency``) are in flight, so a million leads stream through without being
        held in memory (only their identities are, about 100 bytes each, to find repeats).
        Every request also passes the client's rate limiter and concurrency gate.
        Destinations are normalised before sending (spaces and ``- . ( ) /`` removed); one
        that is not then E.164 is reported ``failed`` without being sent.

        Each lead has an identity: by default its content (destination plus agent, caller ID,
        overrides, variables and metadata), or ``key(request)`` when you give ``key`` (for
        example ``key=lambda r: r["lead_id"]``). A lead whose identity appeared earlier in the
        input is reported ``duplicate`` and not dialed. To call someone again on purpose, give
        that request a new key (or run it under a new journal or launch name).

        Outcomes are recorded in a launch store, matched by identity: ``journal=PATH`` (a
        JSON-lines file, one process) or ``store=`` (for example
        :class:`flireo_async.fleet.RedisLaunchStore`, shared by many processes and hosts).
        Then a rerun after a crash, Ctrl-C or an edited input (rows added, removed, re-sorted)
        skips every lead that was launched or may have been (they are yielded with
        ``resumed=True``) and sends the failed ones again. Without either, nothing is recorded.

        Results come in completion order; ``result.index`` is the request's position in the
        input. A request whose outcome is ambiguous is reported ``unknown`` and never sent again
        (the API has no idempotency key; see :func:`launch_outcome`). If the store stops
        working (a journal that cannot be written, an unreachable Redis) no further lead is
        dialed: the requests in flight finish, then :class:`~flireo_async.bulk.LaunchStoreError`
        is raised.

        Close the iterator when you stop early (``async with contextlib.aclosing(...)``) or
        cancel the consuming task: requests still in flight are cancelled and recorded as
        unknown (those not yet sent are given back), and a rerun with the same store resumes.
        """
        limit = max_in_flight if max_in_flight is not None else self._client.config.max_concurrency
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError(f"max_in_flight must be a positive integer, got {max_in_flight!r}")
        if isinstance(requests, (str, bytes, Mapping, OutboundCallRequest)):
            raise TypeError("create_many takes an iterable of requests; for one call use calls.create()")
        if journal is not None and store is not None:
            raise ValueError("give journal= or store=, not both")
        if key is not None and not callable(key):
            raise TypeError("key must be a function of the request, e.g. key=lambda r: r['lead_id']")
        chosen: LaunchStore = (
            store if store is not None else FileLaunchStore(journal) if journal is not None else _NoStore()
        )
        if not isinstance(chosen, LaunchStore):
            raise TypeError(f"store must be a LaunchStore, got {type(chosen).__name__}")
        return launch_many(self, requests, max_in_flight=limit, store=chosen, key=key)


class _NoStore:
    """The store of a launch without a journal: remembers this run in memory only."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    @property
    def description(self) -> str:
        return "memory"

    async def open(self, scope: str) -> None:
        self._seen.clear()

    async def claim(self, lead: Lead) -> Claim:
        first = self._seen.setdefault(lead.identity, lead.index)
        return Granted() if first == lead.index else Duplicate(first)

    async def mark_sending(self, lead: Lead) -> None:
        return None

    async def settle(
        self, lead: Lead, status: Any, *, call_id: str | None = None, error: str | None = None
    ) -> None:
        return None

    async def close(self) -> None:
        self._seen.clear()
