"""flireo-async: an async-first Python SDK for the Flireo voice-AI API.

>>> async with AsyncFlireo() as client:           # FLIREO_API_KEY from the environment
...     agent = await client.agents.create(name="Support")
...     async for log in client.usage.list(start_date=since):
...         ...
"""

from ._client import AsyncFlireo
from ._config import DEFAULT_BASE_URL, ClientConfig
from ._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConflictError,
    EventLoopMismatchError,
    FlireoError,
    InsufficientCreditsError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestValidationError,
    ResponseTooLargeError,
    UnprocessableEntityError,
)
from ._pagination import AsyncPaginator, Page
from ._response import RateLimitState, RawResponse
from ._types import UNSET, UnsetType
from ._version import __version__

__all__ = [
    "__version__",
    "AsyncFlireo",
    "ClientConfig",
    "DEFAULT_BASE_URL",
    "AsyncPaginator",
    "Page",
    "RawResponse",
    "RateLimitState",
    "UNSET",
    "UnsetType",
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
