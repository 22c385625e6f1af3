"""The exception hierarchy. Every error the SDK raises derives from :class:`FlireoError`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "FlireoError",
    "RequestValidationError",
    "APIConnectionError",
    "APITimeoutError",
    "ClientClosedError",
    "EventLoopMismatchError",
    "APIResponseValidationError",
    "ResponseTooLargeError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "InsufficientCreditsError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "UnprocessableEntityError",
    "RateLimitError",
    "InternalServerError",
]


class FlireoError(Exception):
    """Base class of every error raised by flireo-async."""


class RequestValidationError(FlireoError, ValueError):
    """The arguments of a call are invalid; nothing was sent.

    ``field`` is the dotted path of the offending field (``llm_config.temperature``) and
    ``problem`` says what is wrong with it.
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field = field
        self.problem = problem


class APIConnectionError(FlireoError):
    """The request did not get an HTTP response (DNS, refused or dropped connection, TLS).

    ``sent`` tells whether any part of the request may have reached the server: when it is
    ``False`` the server certainly did not process the request.
    """

    def __init__(self, message: str, *, method: str, url: str, sent: bool = True) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.sent = sent


class APITimeoutError(APIConnectionError):
    """The request timed out; the server may or may not have processed it."""


class ClientClosedError(APIConnectionError):
    """The client (or the aiohttp session it was given) is closed; nothing was sent.

    ``sent`` is always ``False``. Create a new client instead of reusing a closed one.
    """


class EventLoopMismatchError(APIConnectionError):
    """The client is used from another event loop than the one it was first used in; nothing
    was sent. ``sent`` is always ``False``. Create one client per event loop (per ``asyncio.run``).
    """


class APIResponseValidationError(FlireoError):
    """A success response whose body does not match the spec. ``body`` holds the raw text."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        body: str,
        headers: Mapping[str, str],
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.headers = headers
        self.request_id = request_id


class ResponseTooLargeError(APIResponseValidationError):
    """A response body is larger than ``max_response_bytes``; reading stopped at the cap.

    ``limit`` is the cap in bytes; ``body`` is empty (the body was not kept). The request itself
    reached the server, which may have processed it.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        limit: int,
        headers: Mapping[str, str],
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, status=status, body="", headers=headers, request_id=request_id)
        self.limit = limit


class APIStatusError(FlireoError):
    """The API answered with an error status (4xx or 5xx).

    Both documented error body shapes are decoded: ``code`` is the machine code of the nested
    shape (``None`` for the flat one), ``message`` the most specific human text, ``details``
    the per-problem list of validation errors, ``param`` the offending field when the API names
    it, and ``body`` the parsed JSON (or the raw text when the body is not JSON).
    """

    status: int = 0

    def __init__(
        self,
        message: str,
        *,
        status: int,
        error: str | None = None,
        code: str | None = None,
        param: str | None = None,
        details: list[str] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error = error
        self.code = code
        self.param = param
        self.details = details or []
        self.body = body
        self.headers: Mapping[str, str] = headers or {}
        self.request_id = request_id

    def __str__(self) -> str:
        text = f"{self.status} {self.message}"
        # Details the message already says (the API often puts them in both) are not repeated.
        extra = [detail for detail in self.details if detail not in self.message]
        if extra:
            text += " (" + "; ".join(extra) + ")"
        if self.request_id:
            text += f" [request id {self.request_id}]"
        return text


class BadRequestError(APIStatusError):
    """400: the request is invalid (field, command or state)."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, invalid, expired or revoked."""


class InsufficientCreditsError(APIStatusError):
    """402: the organization has no credits left for this action."""


class PermissionDeniedError(APIStatusError):
    """403: the resource belongs to another organization."""


class NotFoundError(APIStatusError):
    """404: no such resource."""


class ConflictError(APIStatusError):
    """409: the resource exists already or is in a conflicting state."""


class UnprocessableEntityError(APIStatusError):
    """422: the request is well-formed but cannot be processed."""


class RateLimitError(APIStatusError):
    """429: too many requests. ``retry_after`` is the server's wait in seconds, if it said."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """5xx: the API or an upstream provider failed."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: InsufficientCreditsError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def error_class_for(status: int) -> type[APIStatusError]:
    """The exception class for an HTTP error status."""
    if status >= 500:
        return InternalServerError
    return _BY_STATUS.get(status, APIStatusError)
