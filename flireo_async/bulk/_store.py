"""The launch store: the record that decides whether a lead may be dialed now.

The launcher asks the store before every dial and tells it what happened after:

1. :meth:`LaunchStore.claim` — atomically reserve the lead for this worker, or learn why not
   (it was settled earlier, it repeats a lead of this run, another live worker holds it).
2. :meth:`LaunchStore.mark_sending` — durably record "being dialed" right before the request
   goes out. A lead that reached this point and has no outcome is ``unknown`` forever after:
   it may have been dialed.
3. :meth:`LaunchStore.settle` — record the outcome.

A store that cannot record a claim or a "sending" mark raises :class:`LaunchStoreError`, and
the lead is not dialed. Two stores ship: :class:`~flireo_async.bulk.FileLaunchStore` (a
JSON-lines journal, one process) and :class:`~flireo_async.fleet.RedisLaunchStore` (many
processes and hosts).

Runs: every :meth:`LaunchStore.open` starts or joins a *run*. Within a run a lead is dialed at
most once and a failed lead stays failed; a later run sends failed leads again. Launched and
unknown leads are never sent again by any run.
"""

from __future__ import annotations

from typing import Literal, Protocol, Union, runtime_checkable

import attrs

from .._errors import FlireoError

__all__ = [
    "LaunchStore",
    "LaunchStoreError",
    "ClaimLostError",
    "Lead",
    "Claim",
    "Granted",
    "Settled",
    "Duplicate",
    "Busy",
    "FinalStatus",
]

FinalStatus = Literal["launched", "failed", "unknown"]
"""An outcome a store records: dialed, certainly not dialed, or maybe dialed."""


class LaunchStoreError(FlireoError):
    """The launch store cannot be used (locked, unreachable, lost its data); nothing was dialed
    for the lead at hand."""


class ClaimLostError(LaunchStoreError):
    """Another worker took this lead over (this worker was presumed dead); it was not dialed."""


@attrs.frozen
class Lead:
    """What a store knows of a lead: its identity, its position in the input and its number.

    ``legacy`` is the content hash flireo-async 0.1 journals recorded, for stores that still
    read such records.
    """

    identity: str
    index: int
    destination: str | None = None
    legacy: str | None = None


@attrs.frozen
class Granted:
    """The lead is reserved for this worker: dial it."""


@attrs.frozen
class Settled:
    """The lead already has an outcome (from an earlier run, or from another worker of this run).

    ``index`` is the input position the outcome was recorded for, ``worker`` who recorded it
    (when the store knows).
    """

    status: FinalStatus
    call_id: str | None = None
    error: str | None = None
    index: int | None = None
    worker: str | None = None


@attrs.frozen
class Duplicate:
    """The lead repeats one seen earlier in this run at ``first_index``: not dialed again."""

    first_index: int


@attrs.frozen
class Busy:
    """Another live worker holds the lead; ask again later."""

    worker: str


Claim = Union[Granted, Settled, Duplicate, Busy]
"""The answer of :meth:`LaunchStore.claim`."""


@runtime_checkable
class LaunchStore(Protocol):
    """Where a bulk launch records, per lead identity, what was dialed; see the module docs."""

    @property
    def description(self) -> str:
        """What to call the store in messages (``journal leads.journal``)."""
        ...

    async def open(self, scope: str) -> None:
        """Connect, lock or load, and start (or join) a run. Raises :class:`LaunchStoreError`.

        ``scope`` names the API key the launch dials with (a salted hash of it), for stores
        that several keys could share.
        """
        ...

    async def claim(self, lead: Lead) -> Claim:
        """Reserve ``lead`` for this worker, or say why it must not be dialed now."""
        ...

    async def mark_sending(self, lead: Lead) -> None:
        """Durably record that ``lead`` is about to be dialed; raises when that cannot be
        recorded (then it is not dialed)."""
        ...

    async def settle(
        self,
        lead: Lead,
        status: FinalStatus | Literal["released"],
        *,
        call_id: str | None = None,
        error: str | None = None,
    ) -> None:
        """Record the outcome of a granted lead. ``released`` gives back a lead that was never
        sent (the launch stopped before its turn): any later claim may dial it."""
        ...

    async def close(self) -> None:
        """End this worker's part of the run and release what the store holds."""
        ...
