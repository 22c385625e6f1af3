"""What a call returns besides its model: status, headers, request id and rate-limit state."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar

import attrs

__all__ = ["RateLimitState", "RawResponse"]

T = TypeVar("T")


@attrs.frozen
class RateLimitState:
    """The API's ``X-RateLimit-*`` headers of one response (``None`` where a header is missing)."""

    limit: int | None
    remaining: int | None
    reset: int | None
    """Unix time in seconds at which the current window resets."""

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimitState:
        return cls(
            _int(headers.get("X-RateLimit-Limit")),
            _int(headers.get("X-RateLimit-Remaining")),
            _int(headers.get("X-RateLimit-Reset")),
        )


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value))
    except (ValueError, OverflowError):  # not a number, NaN, or an infinity
        return None


@attrs.frozen
class RawResponse(Generic[T]):
    """A decoded response with its HTTP details, from ``client.with_raw_response``.

    ``parsed`` is what the plain method would have returned.
    """

    status: int
    headers: Mapping[str, str] = attrs.field(repr=False)
    parsed: T
    attempts: int = 1
    """How many HTTP attempts the call took (1 when it was not retried)."""

    @property
    def request_id(self) -> str | None:
        """The ``X-Request-Id`` header, when the API sent one."""
        return self.headers.get("X-Request-Id")

    @property
    def rate_limit(self) -> RateLimitState:
        """The ``X-RateLimit-*`` headers of this response."""
        return RateLimitState.from_headers(self.headers)
