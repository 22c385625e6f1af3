"""The retry table of ``flireo_async._retry``, cell by cell, and its use by the bulk launcher."""

from __future__ import annotations

import pytest

from flireo_async import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
)
from flireo_async._errors import APIStatusError, error_class_for
from flireo_async._retry import Failure, Verdict, failure_of, judge
from flireo_async.bulk import launch_outcome

# failure -> (retry when idempotent, retry a POST, carried out?)
TABLE: dict[Failure, tuple[bool, bool, str]] = {
    "not-sent": (True, True, "no"),
    429: (True, True, "no"),
    "timeout": (True, False, "maybe"),
    "dropped": (True, False, "maybe"),
    408: (True, False, "maybe"),
    500: (True, False, "maybe"),
    502: (True, False, "maybe"),
    503: (True, False, "maybe"),
    504: (True, False, "maybe"),
    501: (False, False, "maybe"),
    505: (False, False, "maybe"),
    599: (False, False, "maybe"),
    400: (False, False, "no"),
    401: (False, False, "no"),
    402: (False, False, "no"),
    403: (False, False, "no"),
    404: (False, False, "no"),
    409: (False, False, "no"),
    422: (False, False, "no"),
    "bad-body": (False, False, "maybe"),
}


@pytest.mark.parametrize("failure", list(TABLE))
def test_every_cell(failure: Failure) -> None:
    idempotent, post, carried_out = TABLE[failure]
    assert judge(failure, idempotent=True) == Verdict(retry=idempotent, carried_out=carried_out)  # type: ignore[arg-type]
    assert judge(failure, idempotent=False) == Verdict(retry=post, carried_out=carried_out)  # type: ignore[arg-type]


def status_error(status: int) -> APIStatusError:
    return error_class_for(status)("x", status=status)


ERRORS: list[tuple[BaseException, Failure | None]] = [
    (APIConnectionError("refused", method="POST", url="u", sent=False), "not-sent"),
    (APIConnectionError("dropped", method="POST", url="u", sent=True), "dropped"),
    (APITimeoutError("slow", method="POST", url="u"), "timeout"),
    (APITimeoutError("connect timeout", method="POST", url="u", sent=False), "not-sent"),
    (RateLimitError("x", status=429), 429),
    (BadRequestError("x", status=400), 400),
    (NotFoundError("x", status=404), 404),
    (ConflictError("x", status=409), 409),
    (InternalServerError("x", status=503), 503),
    (status_error(408), 408),
    (APIResponseValidationError("bad", status=200, body="{", headers={}), "bad-body"),
    (RuntimeError("surprise"), None),
]


@pytest.mark.parametrize(("error", "failure"), ERRORS)
def test_errors_map_to_failures_and_the_launcher_follows_the_table(
    error: BaseException, failure: Failure | None
) -> None:
    assert failure_of(error) == failure
    expected = "unknown" if failure is None else ("failed" if TABLE[failure][2] == "no" else "unknown")
    assert launch_outcome(error) == expected
    assert launch_outcome(error, sent=False) == "failed"
