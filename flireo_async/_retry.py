"""When a request is sent again, and what a failure says about whether it was carried out.

One table decides both, for the transport's retries and for the bulk launcher's outcomes:

=================================  ==================  ==============  ===================
failure                            carried out?        retry GET,      retry POST
                                                       PATCH, DELETE
=================================  ==================  ==============  ===================
nothing sent (connection refused)  no                  yes             yes
429 Too Many Requests              no                  yes             yes
timeout                            maybe               yes             no
connection dropped after sending   maybe               yes             no
408, 500, 502, 503, 504            maybe               yes             no
any other 5xx                      maybe               no              no
any other 4xx                      no                  no              no
2xx with a body that is not valid  yes, or maybe       no              no
=================================  ==================  ==============  ===================

"No" means the server certainly did not act on the request: sending it again cannot do
anything twice. The API has no idempotency keys, so a POST (``calls.create`` dials a real
person) is sent again only then.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from typing import Literal, Union

import attrs

from ._errors import APIConnectionError, APIResponseValidationError, APIStatusError, APITimeoutError

__all__ = [
    "Failure",
    "Verdict",
    "judge",
    "failure_of",
    "backoff",
    "parse_retry_after",
    "wait_seconds",
    "RETRYABLE_STATUSES",
]

Failure = Union[Literal["not-sent", "timeout", "dropped", "bad-body"], int]
"""What went wrong with one attempt: a kind of transport failure, or the HTTP status."""

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""Statuses after which an idempotent request is sent again."""
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0


@attrs.frozen
class Verdict:
    """What one failure means: ``retry`` (within the caller's retry budget) and ``carried_out``
    (``"no"``: the server certainly did not act; ``"maybe"``: it may have)."""

    retry: bool
    carried_out: Literal["no", "maybe"]


def judge(failure: Failure, *, idempotent: bool) -> Verdict:
    """The table above, for one failure of a request that is (or is not) idempotent."""
    if failure == "not-sent" or failure == 429:
        return Verdict(retry=True, carried_out="no")
    if failure in ("timeout", "dropped"):
        return Verdict(retry=idempotent, carried_out="maybe")
    if failure == "bad-body":
        return Verdict(retry=False, carried_out="maybe")
    assert isinstance(failure, int)
    if failure in RETRYABLE_STATUSES:
        return Verdict(retry=idempotent, carried_out="maybe")
    if failure >= 500:
        return Verdict(retry=False, carried_out="maybe")
    return Verdict(retry=False, carried_out="no")


def failure_of(error: BaseException) -> Failure | None:
    """The :data:`Failure` an SDK exception reports, or ``None`` for one the table does not know
    (which then counts as "maybe carried out")."""
    if isinstance(error, APIConnectionError):
        if not error.sent:
            return "not-sent"
        return "timeout" if isinstance(error, APITimeoutError) else "dropped"
    if isinstance(error, APIStatusError):
        return error.status
    if isinstance(error, APIResponseValidationError):
        return "bad-body"
    return None


def backoff(attempt: int) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(8, 0.5 * 2**attempt)] seconds."""
    return random.uniform(0.0, min(BACKOFF_CAP, BACKOFF_BASE * (2**attempt)))


def wait_seconds(value: float) -> float | None:
    """A wait the server asked for: never negative; NaN means it said nothing usable."""
    if math.isnan(value):
        return None
    return max(0.0, value)


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date (may be ``inf``)."""
    if not value:
        return None
    try:
        return wait_seconds(float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return max(0.0, when.timestamp() - time.time())
