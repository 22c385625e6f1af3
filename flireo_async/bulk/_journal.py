"""``FileLaunchStore``: the launch store of one process, an append-only JSON-lines journal.

Every line is one complete JSON object:

- ``{"event": "run", "run": 3, "version": 2, "at": ...}`` — a process opened the journal;
- ``{"event": "attempt", "id": ..., "index": 5, "run": 3, "destination": ...}`` — the lead is
  about to be dialed (on disk before the request leaves);
- ``{"event": "launched" | "failed" | "unknown" | "released", "id": ..., ...}`` — its outcome
  (``call_id`` for launched, ``error`` otherwise).

Lines are written by a group commit: the lines queued while one write is on its way go out
together with a single ``fsync``, in a worker thread, so the event loop never blocks on the
disk and a burst of launches costs one sync, not one each. Every ``attempt`` is durable before
its request is sent. A POSIX file lock keeps a second process out while the journal is open.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import os
from typing import IO, Any, Literal

from .. import _json
from .._convert import format_datetime
from .._logging import logger
from ._store import Busy, Claim, Duplicate, FinalStatus, Granted, LaunchStoreError, Lead, Settled

try:  # POSIX: keep two processes from writing one journal (each would dial the other's leads).
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["FileLaunchStore"]

_CLAIMED, _SENDING, _LAUNCHED, _FAILED, _UNKNOWN, _RELEASED = range(6)
_STATE_OF_EVENT = {
    "attempt": _SENDING,
    "launched": _LAUNCHED,
    "failed": _FAILED,
    "unknown": _UNKNOWN,
    "released": _RELEASED,
}
_STATUS = {_LAUNCHED: "launched", _FAILED: "failed", _UNKNOWN: "unknown"}
_VERSION = 2
_MAX_ERROR = 500
"""Error texts are cut to this length in the journal (a 5xx may carry a whole HTML page)."""


class _Entry:
    """What the journal says about one identity, plus where this run has seen it."""

    __slots__ = ("call_id", "error", "index", "run", "seen_index", "seen_run", "state")

    def __init__(self, state: int, run: int, index: int) -> None:
        self.state = state
        self.run = run
        self.index = index
        self.call_id: str | None = None
        self.error: str | None = None
        self.seen_run = -1
        self.seen_index = -1


class _GroupWriter:
    """Appends lines to a file; each ``write`` returns once its line is synced to disk."""

    def __init__(self, file: IO[bytes], *, sync: bool) -> None:
        self._file = file
        self._sync = sync
        self._queue: list[tuple[bytes, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self.broken: BaseException | None = None

    async def write(self, line: bytes) -> None:
        if self.broken is not None:
            raise LaunchStoreError(f"the journal cannot be written: {self.broken}")
        future = asyncio.get_running_loop().create_future()
        self._queue.append((line, future))
        if self._task is None:
            self._task = asyncio.ensure_future(self._drain())
        # The line is written even if the caller is cancelled meanwhile: a shield keeps the
        # future from being cancelled with it, so the other lines of its batch are unaffected.
        await asyncio.shield(future)

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                data = b"".join(line for line, _ in batch)
                try:
                    await asyncio.to_thread(self._write_sync, data)
                except Exception as exc:  # disk full, I/O error: nothing after this is trusted
                    self.broken = exc
                    error = LaunchStoreError(f"the journal cannot be written: {exc}")
                    for _, future in batch + self._queue:
                        if not future.done():
                            future.set_exception(error)
                    self._queue = []
                    return
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)
        finally:
            self._task = None

    def _write_sync(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()
        if self._sync:
            os.fsync(self._file.fileno())

    async def flush(self) -> None:
        """Wait until every queued line is written."""
        while self._task is not None:
            await asyncio.shield(self._task)


class FileLaunchStore:
    """A launch store in an append-only JSON-lines file (the default of ``create_many``).

    ``create_many(requests, journal="leads.journal")`` is short for
    ``create_many(requests, store=FileLaunchStore("leads.journal"))``. One process at a time
    may hold the file (a second one gets :class:`~flireo_async.bulk.LaunchStoreError`); for
    several processes or hosts use :class:`~flireo_async.fleet.RedisLaunchStore`.

    ``sync=False`` skips ``fsync`` (only for throwaway launches: a crash of the machine could
    then lose the record of a dial). Journals written by flireo-async 0.1 are read: their
    records match the leads whose content they hashed.

    Memory: about 250 bytes per lead in the journal.
    """

    def __init__(self, path: str | os.PathLike[str], *, sync: bool = True) -> None:
        self.path = os.fspath(path)
        self._sync = sync
        self._entries: dict[str, _Entry] = {}
        self._file: IO[bytes] | None = None
        self._writer: _GroupWriter | None = None
        self.run = 0
        self.has_legacy_records = False
        """Whether the journal holds 0.1 records (then leads carry a legacy digest to match)."""
        self.unreadable_lines = 0

    @property
    def description(self) -> str:
        """``journal <path>``."""
        return f"journal {self.path}"

    # -- opening ---------------------------------------------------------------------------

    async def open(self, scope: str = "default") -> None:
        """Lock the file, read what earlier runs recorded and start a new run (``scope`` is
        not needed: a journal belongs to one launch)."""
        if self._file is not None:
            raise LaunchStoreError(f"{self.description} is already open")
        try:
            file: IO[bytes] = await asyncio.to_thread(open, self.path, "a+b")
        except OSError as exc:
            raise LaunchStoreError(f"cannot open {self.description}: {exc.strerror or exc}") from None
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise LaunchStoreError(
                        f"{self.description} is in use by another process; two launches sharing "
                        "a journal could dial the same lead twice"
                    ) from None
            last_run = await asyncio.to_thread(self._load, file)
            self._file = file
            self._writer = _GroupWriter(file, sync=self._sync)
            self.run = last_run + 1
            await self._append({"event": "run", "run": self.run, "version": _VERSION, "at": _now()})
        except BaseException:
            self._file = None
            file.close()
            raise

    def _load(self, file: IO[bytes]) -> int:
        file.seek(0)
        offset = 0
        last_run = 0
        for line in file:
            if not line.endswith(b"\n"):
                # A line cut short by a crash. An attempt cut short was never complete, so its
                # request was never sent; an outcome cut short leaves its attempt without an
                # outcome, which reads as unknown. Dropping it is safe either way, and it must
                # go so that the next line starts on a line of its own.
                logger.warning("%s: dropping an incomplete last line", self.description)
                file.truncate(offset)
                break
            offset += len(line)
            try:
                entry = _json.loads(line)
                if not isinstance(entry, dict):
                    raise ValueError("not an object")
                event = entry.get("event")
                if event == "run":
                    run = entry.get("run")
                    last_run = max(last_run, run if type(run) is int else last_run + 1)
                    continue
                state = _STATE_OF_EVENT.get(event) if isinstance(event, str) else None
                if state is None:
                    raise ValueError("unknown event")
                self._replay(entry, state, last_run)
            except (ValueError, KeyError, TypeError):
                self.unreadable_lines += 1
        if self.unreadable_lines:
            logger.warning("%s: ignored %d unreadable lines", self.description, self.unreadable_lines)
        file.seek(0, os.SEEK_END)
        return last_run

    def _replay(self, entry: dict[str, Any], state: int, last_run: int) -> None:
        index = entry["index"]
        if type(index) is not int or index < 0:
            raise ValueError("bad index")
        identity = entry.get("id")
        if not isinstance(identity, str):
            # A 0.1 record: {"key": "<index>:<content hash>"}.
            position, _, digest = entry["key"].partition(":")
            if int(position) != index or len(digest) != 16:
                raise ValueError("bad key")
            identity = "legacy:" + digest
            self.has_legacy_records = True
        run = entry.get("run")
        run = run if type(run) is int else last_run
        current = self._entries.get(identity)
        if current is not None and current.state in (_LAUNCHED, _UNKNOWN) and state != _LAUNCHED:
            # launched and unknown are final: a lead that may have been dialed is never sent
            # again, so a later line cannot take that back (launched wins over unknown).
            return
        if current is None:
            current = self._entries[identity] = _Entry(state, run, index)
        current.state, current.run, current.index = state, run, index
        if state == _LAUNCHED:
            call_id = entry.get("call_id")
            current.call_id = call_id if isinstance(call_id, str) else None
        error = entry.get("error")
        current.error = error if isinstance(error, str) else None

    # -- the protocol ----------------------------------------------------------------------

    async def claim(self, lead: Lead) -> Claim:
        """Reserve the lead in memory (nothing is on disk until :meth:`mark_sending`)."""
        self._check_open()
        entry = self._entries.get(lead.identity)
        if entry is None and self.has_legacy_records and lead.legacy is not None:
            entry = self._entries.pop("legacy:" + lead.legacy, None)
            if entry is not None:
                self._entries[lead.identity] = entry
        if entry is None:
            entry = self._entries[lead.identity] = _Entry(_CLAIMED, self.run, lead.index)
            entry.seen_run, entry.seen_index = self.run, lead.index
            return Granted()
        if entry.seen_run == self.run and entry.seen_index != lead.index:
            return Duplicate(entry.seen_index)
        entry.seen_run, entry.seen_index = self.run, lead.index
        if entry.state in (_CLAIMED, _SENDING):
            if entry.run == self.run:
                return Busy("this process")
            # Attempted by an earlier run that recorded no outcome: it stopped while the
            # request was in flight, so the lead may have been dialed.
            entry.state = _UNKNOWN
            entry.error = "no outcome was recorded: an earlier run stopped while this request was in flight"
            await self._record("unknown", lead, entry.index, error=entry.error)
        elif entry.state == _RELEASED or (entry.state == _FAILED and entry.run < self.run):
            entry.state, entry.run, entry.index = _CLAIMED, self.run, lead.index
            entry.call_id = entry.error = None
            return Granted()
        status: FinalStatus = _STATUS[entry.state]  # type: ignore[assignment]
        return Settled(status, entry.call_id, entry.error, entry.index)

    async def mark_sending(self, lead: Lead) -> None:
        """Write the ``attempt`` line and wait until it is on disk."""
        self._check_open()
        entry = self._entries.get(lead.identity)
        if entry is None or entry.state != _CLAIMED or entry.run != self.run:
            raise LaunchStoreError(f"lead {lead.identity} was not claimed by this run")
        extra = {"destination": lead.destination} if lead.destination is not None else {}
        # Before the write: if the caller is cancelled while waiting, the line is still written,
        # and the "released" that follows must then be written too.
        entry.state = _SENDING
        await self._record("attempt", lead, lead.index, **extra)

    async def settle(
        self,
        lead: Lead,
        status: FinalStatus | Literal["released"],
        *,
        call_id: str | None = None,
        error: str | None = None,
    ) -> None:
        """Write the outcome line and wait until it is on disk."""
        self._check_open()
        entry = self._entries.get(lead.identity)
        if entry is None or entry.run != self.run:
            raise LaunchStoreError(f"lead {lead.identity} was not claimed by this run")
        if error is not None:
            error = error[:_MAX_ERROR]
        if status == "released" and entry.state == _CLAIMED:
            # Never written to disk, so there is nothing to take back there.
            entry.state = _RELEASED
            return
        fields: dict[str, Any] = {}
        if call_id is not None:
            fields["call_id"] = call_id
        if error is not None:
            fields["error"] = error
        await self._record(status, lead, lead.index, **fields)
        entry.state = _STATE_OF_EVENT[status]
        entry.call_id, entry.error = call_id, error

    async def close(self) -> None:
        """Wait for queued lines, then close the file (which releases the lock)."""
        file, self._file = self._file, None
        if file is None:
            return
        try:
            if self._writer is not None:
                await self._writer.flush()
        finally:
            file.close()

    # -- writing ---------------------------------------------------------------------------

    async def _record(self, event: str, lead: Lead, index: int, **fields: Any) -> None:
        record: dict[str, Any] = {"event": event, "id": lead.identity, "index": index, "run": self.run}
        record.update(fields)
        record["at"] = _now()
        await self._append(record)

    async def _append(self, record: dict[str, Any]) -> None:
        assert self._writer is not None
        line = _json.dumps(record) + b"\n"
        await self._writer.write(line)

    def _check_open(self) -> None:
        if self._file is None:
            raise LaunchStoreError(f"{self.description} is not open")

    def __repr__(self) -> str:
        return f"FileLaunchStore({self.path!r})"


def _now() -> str:
    return format_datetime(_dt.datetime.now(_dt.timezone.utc))
