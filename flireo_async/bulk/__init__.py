"""Bulk outbound calling: ``client.calls.create_many(requests, journal=...)``.

``POST /calls/outbound`` dials a real person and the API has no idempotency key. The launcher
therefore gives every lead exactly one outcome — ``launched``, ``failed`` (certainly not
dialed), ``unknown`` (maybe dialed; never sent again) or ``duplicate`` (a repeat of an earlier
lead of the input) — and records outcomes in a launch store keyed by the lead's identity, so
that reruns, edited inputs and many cooperating workers dial nobody twice:

- :class:`FileLaunchStore` (``journal=PATH``): a JSON-lines journal, one process at a time;
- :class:`flireo_async.fleet.RedisLaunchStore`: shared by processes and hosts.

Identities: see :func:`content_identity` and :func:`key_identity`.
"""

from ._identity import E164, content_identity, key_identity, normalize_destination
from ._journal import FileLaunchStore
from ._launcher import (
    BulkCallsMixin,
    LaunchResult,
    LaunchStatus,
    LeadKey,
    OutboundRequestLike,
    RecordedFailureError,
    UnknownOutcomeError,
    describe_error,
    launch_outcome,
)
from ._store import (
    Busy,
    Claim,
    ClaimLostError,
    Duplicate,
    FinalStatus,
    Granted,
    LaunchStore,
    LaunchStoreError,
    Lead,
    Settled,
)

__all__ = [
    "BulkCallsMixin",
    "LaunchResult",
    "LaunchStatus",
    "LeadKey",
    "OutboundRequestLike",
    "UnknownOutcomeError",
    "RecordedFailureError",
    "launch_outcome",
    "describe_error",
    "E164",
    "content_identity",
    "key_identity",
    "normalize_destination",
    "LaunchStore",
    "LaunchStoreError",
    "ClaimLostError",
    "FileLaunchStore",
    "Lead",
    "Claim",
    "Granted",
    "Settled",
    "Duplicate",
    "Busy",
    "FinalStatus",
]
