"""Bulk outbound calling: ``client.calls.create_many(requests, journal=...)``.

``POST /calls/outbound`` dials a real person and the API has no idempotency key, so a bulk
launcher must never send a request twice unless it knows the first attempt was refused. Each
request therefore ends in exactly one of three outcomes:

- ``launched``: the API answered with a call id.
- ``failed``: the API certainly did not dial (invalid request, 400/401/402/403/404/409/422,
  429 after the client's retries, or a connection refused before anything was sent). Safe to
  send again later.
- ``unknown``: the request may have been processed (timeout, dropped connection, 5xx, a 2xx
  whose body does not match the spec). Never sent again automatically; check ``GET /calls``.

With a journal (an append-only JSON-lines file) a rerun after a crash or Ctrl-C skips every
request that was launched or may have been, and sends the failed ones again. Requests are
identified by their position in the input plus a hash of their canonical JSON, so a changed
input is noticed and only requests whose key matches are skipped.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import datetime as _dt
import hashlib
import json
import os
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Mapping
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol, Union

import attrs

from ._convert import DecodeError, decode, encode, format_datetime
from ._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    FlireoError,
    RequestValidationError,
)
from ._logging import logger
from .models import OutboundCallRequest, OutboundCallResponse

if TYPE_CHECKING:
    from ._resource import Requester

try:  # POSIX: keep two processes from writing one journal (each would dial the other's leads).
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "BulkCallsMixin",
    "JournalError",
    "LaunchResult",
    "LaunchStatus",
    "OutboundRequestLike",
    "UnknownOutcomeError",
    "launch_outcome",
    "request_key",
]

LaunchStatus = Literal["launched", "failed", "unknown"]
"""The outcome of one outbound-call request in a bulk launch."""

OutboundRequestLike = Union[OutboundCallRequest, Mapping[str, Any]]
"""An :class:`~flireo_async.models.OutboundCallRequest` or a dict of its wire names."""


class UnknownOutcomeError(FlireoError):
    """The request may or may not have been carried out, and no better error is at hand.

    Used for requests interrupted while in flight (cancellation, a crash found on resume), for
    unknown outcomes read back from a journal, and for a 2xx answer that says ``success: false``.
    """


class JournalError(FlireoError):
    """The journal cannot be used: it is locked by another process or cannot be read."""


@attrs.frozen(kw_only=True)
class LaunchResult:
    """The outcome of one request of :meth:`BulkCallsMixin.create_many`.

    ``index`` is the request's position in the input (0-based), ``request`` what was given,
    ``call_id`` is set when ``status == "launched"``, ``error`` holds the exception for
    ``failed`` and ``unknown``. ``key`` identifies the request in the journal
    (``"<index>:<hash of its canonical JSON>"``). ``resumed`` is true when the outcome was read
    from the journal of an earlier run instead of being produced by a request in this run.
    """

    index: int
    request: OutboundRequestLike
    status: LaunchStatus
    call_id: str | None = None
    error: Exception | None = None
    key: str
    resumed: bool = False

    @property
    def destination(self) -> str | None:
        """The number the request dials, when it has one."""
        if isinstance(self.request, OutboundCallRequest):
            return self.request.destination
        value = self.request.get("destination") if isinstance(self.request, Mapping) else None
        return value if isinstance(value, str) else None


def launch_outcome(error: BaseException) -> Literal["failed", "unknown"]:
    """Whether a failed ``calls.create`` certainly did not dial (``"failed"``) or may have (``"unknown"``).

    ``failed``: invalid arguments (nothing sent), a connection refused before sending, and 4xx
    answers (the API rejected the request; 429 is refused before it is carried out). Everything
    else may have dialed: timeouts, dropped connections, 5xx, 408, a malformed 2xx body, and
    errors this function does not know.
    """
    if isinstance(error, RequestValidationError):
        return "failed"
    if isinstance(error, APIConnectionError):
        return "unknown" if error.sent else "failed"
    if isinstance(error, APIStatusError):
        # 408 means the server gave up waiting; a proxy may still have passed the request on.
        return "failed" if 400 <= error.status < 500 and error.status != 408 else "unknown"
    if isinstance(error, APIResponseValidationError):
        return "unknown"
    return "unknown"


def request_key(index: int, request: OutboundRequestLike) -> str:
    """The journal key of a request: its position plus a hash of its canonical JSON.

    The canonical JSON is the request encoded with its wire names, keys sorted, no spaces.
    """
    payload = encode(request) if isinstance(request, OutboundCallRequest) else request
    return f"{index}:{_digest(payload):016x}"


def _digest(payload: Any) -> int:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:8], "big")


@attrs.frozen
class _Item:
    """One input request, normalised: the model to send, or why it cannot be sent."""

    index: int
    given: OutboundRequestLike
    model: OutboundCallRequest | None
    invalid: RequestValidationError | None
    digest: int

    @property
    def key(self) -> str:
        return f"{self.index}:{self.digest:016x}"

    @property
    def destination(self) -> Any:
        if self.model is not None:
            return self.model.destination
        return self.given.get("destination") if isinstance(self.given, Mapping) else None

    def result(
        self,
        status: LaunchStatus,
        *,
        call_id: str | None = None,
        error: Exception | None = None,
        resumed: bool = False,
    ) -> LaunchResult:
        return LaunchResult(
            index=self.index,
            request=self.given,
            status=status,
            call_id=call_id,
            error=error,
            key=self.key,
            resumed=resumed,
        )


def _prepare(index: int, given: Any) -> _Item:
    """Validate one input request now, so that an invalid one is reported without being sent."""
    model: OutboundCallRequest
    try:
        if isinstance(given, OutboundCallRequest):
            # Round-trip through the strict decoder: attrs does not check the types it is given.
            model = decode(encode(given), OutboundCallRequest)
        elif isinstance(given, Mapping):
            model = decode(dict(given), OutboundCallRequest)
        else:
            raise RequestValidationError(
                "", f"expected an OutboundCallRequest or a dict, got {type(given).__name__}"
            )
    except DecodeError as exc:
        invalid = RequestValidationError(exc.path, f"{exc.problem} (in OutboundCallRequest)")
        return _Item(
            index, given, None, invalid, _digest(given if isinstance(given, Mapping) else repr(given))
        )
    except RequestValidationError as exc:
        return _Item(index, given, None, exc, _digest(repr(given)))
    except TypeError as exc:  # e.g. a dict whose values cannot be encoded
        invalid = RequestValidationError("", f"invalid OutboundCallRequest: {exc}")
        return _Item(index, given, None, invalid, _digest(repr(given)))
    return _Item(index, given, model, None, _digest(encode(model)))


# -- the journal ---------------------------------------------------------------------------------

_NONE, _ATTEMPT, _LAUNCHED, _UNKNOWN, _FAILED = range(5)
_STATE_OF_EVENT = {"attempt": _ATTEMPT, "launched": _LAUNCHED, "unknown": _UNKNOWN, "failed": _FAILED}
_MAX_DENSE_GAP = 1_000_000


class _Outcomes:
    """What a journal says about each request key, in about 17 bytes per request.

    The common case (one request per index) lives in flat arrays indexed by position; a second
    request recorded at the same position (the input changed between runs) or a far-away index
    goes to a small dict.
    """

    def __init__(self) -> None:
        self._digests = array.array("Q")
        self._offsets = array.array("Q")
        self._states = bytearray()
        self._others: dict[tuple[int, int], tuple[int, int]] = {}

    def get(self, index: int, digest: int) -> tuple[int, int] | None:
        """``(state, offset of the line that set it)`` for a key, or ``None``."""
        if index < len(self._states) and self._states[index] != _NONE and self._digests[index] == digest:
            return self._states[index], self._offsets[index]
        return self._others.get((index, digest))

    def known_index(self, index: int) -> bool:
        """Whether some request (with any content) was recorded at this position."""
        return index < len(self._states) and self._states[index] != _NONE

    def record(self, index: int, digest: int, state: int, offset: int) -> None:
        current = self.get(index, digest)
        # launched and unknown are final: a request that may have dialed is never re-sent,
        # so a later line cannot take that back (launched wins over unknown).
        if current is not None and current[0] in (_LAUNCHED, _UNKNOWN) and state != _LAUNCHED:
            return
        size = len(self._states)
        if index >= size and index - size <= _MAX_DENSE_GAP:
            grow = index + 1 - size
            self._states.extend(bytes(grow))
            self._digests.frombytes(bytes(8 * grow))
            self._offsets.frombytes(bytes(8 * grow))
        if index < len(self._states) and (self._states[index] == _NONE or self._digests[index] == digest):
            self._states[index] = state
            self._digests[index] = digest
            self._offsets[index] = offset
        else:
            self._others[(index, digest)] = (state, offset)


class _Journal:
    """The append-only JSON-lines record of a bulk launch; see :meth:`BulkCallsMixin.create_many`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.outcomes = _Outcomes()
        self.mismatched = 0
        self._reader: IO[bytes] | None = None
        self._file: IO[bytes] = open(self.path, "a+b")  # noqa: SIM115 - closed in close()
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise JournalError(
                        f"journal {self.path} is in use by another process; two launches sharing a "
                        "journal could dial the same lead twice"
                    ) from None
            self._load()
            self._append({"event": "run", "at": _now(), "version": 1})
        except BaseException:
            self._file.close()
            raise

    def _load(self) -> None:
        self._file.seek(0)
        offset = 0
        bad = 0
        for line in self._file:
            if not line.endswith(b"\n"):
                # A line cut short by a crash. If it was an attempt, the request was never sent
                # (the attempt is written before sending); if it was an outcome, the attempt
                # without an outcome reads as unknown. Either way dropping it is safe, and it
                # must go so that the next line starts on a line of its own.
                logger.warning("journal %s: dropping an incomplete last line", self.path)
                self._file.truncate(offset)
                break
            try:
                entry = json.loads(line)
                event = entry.get("event") if isinstance(entry, dict) else None
                state = _STATE_OF_EVENT.get(event, _NONE) if isinstance(event, str) else _NONE
                if state != _NONE:
                    index = entry["index"]
                    position, _, digest = entry["key"].partition(":")
                    if type(index) is not int or index < 0 or int(position) != index:
                        raise ValueError("bad index")
                    self.outcomes.record(index, int(digest, 16), state, offset)
            except (ValueError, KeyError, TypeError, AttributeError):
                bad += 1
            offset += len(line)
        if bad:
            logger.warning("journal %s: ignored %d unreadable lines", self.path, bad)
        self._file.seek(0, os.SEEK_END)

    def prior(self, item: _Item) -> LaunchResult | None:
        """The outcome of an earlier run when it rules out sending this request again."""
        found = self.outcomes.get(item.index, item.digest)
        if found is None:
            if self.outcomes.known_index(item.index):
                self.mismatched += 1
                if self.mismatched == 1:
                    logger.warning(
                        "journal %s: request %d differs from the one recorded at that position; "
                        "did the input change? Only requests that match their record are skipped",
                        self.path,
                        item.index,
                    )
            return None
        state, offset = found
        if state == _FAILED:
            return None  # certainly not dialed: send it again
        if state == _ATTEMPT:
            error = UnknownOutcomeError(
                "no outcome was recorded: an earlier run stopped while this request was in flight"
            )
            self.write("unknown", item, error=error)
            return item.result("unknown", error=error, resumed=True)
        entry = self._read_at(offset)
        if state == _LAUNCHED:
            call_id = entry.get("call_id")
            return item.result(
                "launched", call_id=call_id if isinstance(call_id, str) else None, resumed=True
            )
        text = entry.get("error")
        return item.result(
            "unknown",
            error=UnknownOutcomeError(
                f"earlier run: {text}" if isinstance(text, str) else "earlier run: unknown"
            ),
            resumed=True,
        )

    def _read_at(self, offset: int) -> dict[str, Any]:
        if self._reader is None:
            self._reader = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        self._reader.seek(offset)
        try:
            entry = json.loads(self._reader.readline())
        except ValueError:
            return {}
        return entry if isinstance(entry, dict) else {}

    def write(
        self,
        event: str,
        item: _Item,
        *,
        call_id: str | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Append one record and push it to disk before returning."""
        record: dict[str, Any] = {"event": event, "index": item.index, "key": item.key}
        destination = item.destination
        if isinstance(destination, str):
            record["destination"] = destination
        if call_id is not None:
            record["call_id"] = call_id
        if error is not None:
            record["error"] = _describe(error)
        record["at"] = _now()
        self._append(record)

    def _append(self, record: dict[str, Any]) -> None:
        # One write per complete line, then flush and fsync: an "attempt" must be on disk before
        # the request leaves, or a crash right after sending could forget that it was sent.
        self._file.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        self._file.close()  # also releases the lock


def _now() -> str:
    return format_datetime(_dt.datetime.now(_dt.timezone.utc))


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# -- the launcher --------------------------------------------------------------------------------


class _CallsAPI(Protocol):
    """What :class:`BulkCallsMixin` needs from the resource class it is mixed into."""

    @property
    def _client(self) -> Requester: ...

    async def create(self, body: OutboundCallRequest, /) -> OutboundCallResponse: ...


async def _iterate(requests: Iterable[Any] | AsyncIterable[Any]) -> AsyncGenerator[Any, None]:
    if isinstance(requests, AsyncIterable):
        async for item in requests:
            yield item
    else:
        for item in requests:
            yield item


async def _launch(calls: _CallsAPI, item: _Item, journal: _Journal | None) -> LaunchResult:
    assert item.model is not None
    if journal is not None:
        journal.write("attempt", item)
    try:
        response = await calls.create(item.model)
    except asyncio.CancelledError:
        # We cannot tell whether the request left; never send it again.
        if journal is not None:
            journal.write("unknown", item, error=UnknownOutcomeError("cancelled while in flight"))
        raise
    except Exception as exc:
        status = launch_outcome(exc)
        if journal is not None:
            journal.write(status, item, error=exc)
        return item.result(status, error=exc)
    if response.success is False:
        error = UnknownOutcomeError(f"the API answered success=false (call id {response.call_id!r})")
        if journal is not None:
            journal.write("unknown", item, error=error)
        return item.result("unknown", call_id=response.call_id, error=error)
    if journal is not None:
        journal.write("launched", item, call_id=response.call_id)
    return item.result("launched", call_id=response.call_id)


class BulkCallsMixin:
    """Adds :meth:`create_many` to ``client.calls``."""

    async def create_many(
        self: _CallsAPI,
        requests: Iterable[OutboundRequestLike] | AsyncIterable[OutboundRequestLike],
        *,
        max_in_flight: int | None = None,
        journal: str | os.PathLike[str] | None = None,
    ) -> AsyncGenerator[LaunchResult, None]:
        """Launch many outbound calls; yield one :class:`LaunchResult` per request as each completes.

        ``requests`` is an iterable or async iterable of
        :class:`~flireo_async.models.OutboundCallRequest` models or dicts of wire names. It is
        read lazily: at most ``max_in_flight`` requests (default: the client's
        ``max_concurrency``) are in flight, so a million leads stream through in constant
        memory. Every request also passes the client's rate limiter and concurrency gate.

        Results come in completion order; ``result.index`` is the request's position in the
        input. Invalid requests are reported as ``failed`` without being sent. A request whose
        outcome is ambiguous is reported as ``unknown`` and never sent again (the API has no
        idempotency key; see :func:`launch_outcome`).

        ``journal`` names an append-only JSON-lines file. Before each request is sent an
        ``attempt`` line is written and synced to disk, and its outcome after. When the file
        already holds records, requests recorded as launched or unknown, or attempted without
        an outcome (the earlier run died mid-flight), are not sent again: they are yielded with
        ``resumed=True`` (the last kind as ``unknown``). Failed ones are sent again. Keep the
        input in the same order between runs: a request is matched by its position plus a
        hash of its content, and a changed request at a recorded position is sent.

        Close the iterator when you stop early (``async with contextlib.aclosing(...)``) or
        cancel the consuming task: requests still in flight are cancelled and recorded as
        unknown, every journal line stays complete, and a rerun with the same journal resumes.
        """
        limit = max_in_flight if max_in_flight is not None else self._client.config.max_concurrency
        if not isinstance(limit, int) or limit < 1:
            raise ValueError(f"max_in_flight must be a positive integer, got {max_in_flight!r}")
        if isinstance(requests, (str, bytes, Mapping, OutboundCallRequest)):
            raise TypeError("create_many takes an iterable of requests; for one call use calls.create()")
        book = _Journal(journal) if journal is not None else None
        pending: set[asyncio.Task[LaunchResult]] = set()
        try:
            async with contextlib.aclosing(_iterate(requests)) as source:
                index = 0
                exhausted = False
                while True:
                    while not exhausted and len(pending) < limit:
                        try:
                            given = await source.__anext__()
                        except StopAsyncIteration:
                            exhausted = True
                            break
                        item = _prepare(index, given)
                        index += 1
                        prior = book.prior(item) if book is not None else None
                        if prior is not None:
                            yield prior
                        elif item.invalid is not None:
                            if book is not None:
                                book.write("failed", item, error=item.invalid)
                            yield item.result("failed", error=item.invalid)
                        else:
                            pending.add(asyncio.ensure_future(_launch(self, item, book)))
                    if not pending:
                        break
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        yield task.result()
        finally:
            try:
                if pending:
                    for task in pending:
                        task.cancel()
                    # Let each cancelled launch record its "unknown" line before the journal closes.
                    await asyncio.wait(pending)
            finally:
                if book is not None:
                    if book.mismatched:
                        logger.warning(
                            "journal %s: %d requests did not match the record at their position and were sent",
                            book.path,
                            book.mismatched,
                        )
                    book.close()
