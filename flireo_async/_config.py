"""Client configuration: every limit and default in one visible, immutable place."""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import attrs

from ._clock import SYSTEM_CLOCK, Clock
from ._errors import FlireoError, RequestValidationError
from ._options import check_headers
from ._ratelimit import LocalRateLimiter, RateLimiter

__all__ = ["ClientConfig", "DEFAULT_BASE_URL", "DEFAULT_MAX_RESPONSE_BYTES"]

DEFAULT_BASE_URL = "https://api.flireo.com/api/v1"
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
"""32 MiB: a page of 1,000 usage logs is about 0.3 MB, so this only stops runaway bodies."""


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _type_name(value: object) -> str:
    return type(value).__name__


def _check_api_key(key: object) -> None:
    if not isinstance(key, str):
        raise FlireoError(f"api_key must be a string, got a {_type_name(key)}")
    if not key.strip():
        raise FlireoError(
            "no API key: pass AsyncFlireo(api_key=...) or set the FLIREO_API_KEY environment variable"
        )
    # The key goes into an HTTP header: say what is wrong with it, never what it is.
    for position, char in enumerate(key, 1):
        if char.isspace():
            raise FlireoError(
                f"api_key contains whitespace (character {position} of {len(key)}); "
                "a copied key often carries a trailing newline or space"
            )
        if not char.isprintable() or not char.isascii():
            raise FlireoError(
                f"api_key contains a control or non-ASCII character (character {position} of {len(key)}); "
                "API keys are printable ASCII"
            )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _read_only(headers: Any) -> Any:
    """A read-only copy of a mapping (anything else is left for the validation to name)."""
    return MappingProxyType(dict(headers)) if isinstance(headers, Mapping) else headers


def _header_names(headers: Mapping[str, str]) -> str:
    # Names only: a default header may hold a credential (a gateway's or a proxy's).
    return repr(sorted(headers))


@attrs.frozen
class ClientConfig:
    """The settings of an :class:`~flireo_async.AsyncFlireo`; see its docstring for each."""

    api_key: str = attrs.field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    timeout: float = 30.0
    max_retries: int = 2
    max_concurrency: int = 16
    rate_limit: int | None = 100
    prefetch: int = 2
    max_retry_wait: float = 60.0
    strict_responses: bool = False
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    rate_limiter: RateLimiter = attrs.field(factory=LocalRateLimiter)
    """Who paces the requests: in-process by default; see :mod:`flireo_async.fleet` for a
    budget shared by many processes."""
    clock: Clock = attrs.field(default=SYSTEM_CLOCK, repr=False)
    """What the client waits with (retry backoff; the default rate limiter's pacing too)."""
    default_headers: Mapping[str, str] = attrs.field(factory=dict, converter=_read_only, repr=_header_names)
    """Headers sent with every request (a call's ``extra_headers`` go over them); never
    ``Authorization``. The repr shows their names only."""

    def __attrs_post_init__(self) -> None:
        _check_api_key(self.api_key)
        if not isinstance(self.base_url, str):
            raise FlireoError(
                f"base_url must be a string such as {DEFAULT_BASE_URL!r}, got a {_type_name(self.base_url)}"
            )
        try:
            parts = urlsplit(self.base_url)
            host = parts.hostname
        except ValueError:  # e.g. an unbalanced IPv6 bracket or a bad port
            host = None
            parts = None
        if parts is None or parts.scheme not in ("https", "http") or not host:
            raise FlireoError(f"base_url must be an http(s) URL, got {self.base_url!r}")
        if parts.username is not None or parts.password is not None:
            raise FlireoError("base_url must not contain credentials; pass the API key as api_key")
        if parts.scheme == "http" and not _is_loopback(host):
            raise FlireoError(
                f"base_url {self.base_url!r} uses plain http: the API key would travel unencrypted; "
                "use https (http is allowed only for loopback hosts such as 127.0.0.1)"
            )
        checks: list[tuple[str, bool, str]] = [
            ("timeout", _is_number(self.timeout) and self.timeout > 0, "a finite number of seconds > 0"),
            ("max_retries", _is_int(self.max_retries) and self.max_retries >= 0, "an integer >= 0"),
            (
                "max_concurrency",
                _is_int(self.max_concurrency) and self.max_concurrency >= 1,
                "an integer >= 1",
            ),
            (
                "rate_limit",
                self.rate_limit is None or (_is_int(self.rate_limit) and self.rate_limit >= 1),
                "an integer >= 1 (requests per minute) or None",
            ),
            ("prefetch", _is_int(self.prefetch) and self.prefetch >= 0, "an integer >= 0"),
            (
                "max_retry_wait",
                _is_number(self.max_retry_wait) and self.max_retry_wait >= 0,
                "a finite number of seconds >= 0",
            ),
            ("strict_responses", isinstance(self.strict_responses, bool), "True or False"),
            (
                "max_response_bytes",
                _is_int(self.max_response_bytes) and self.max_response_bytes >= 1,
                "an integer >= 1 (bytes)",
            ),
            ("clock", isinstance(self.clock, Clock), "a Clock (monotonic() and async sleep())"),
            (
                "rate_limiter",
                isinstance(self.rate_limiter, RateLimiter),
                "a RateLimiter (LocalRateLimiter, or flireo_async.fleet.RedisRateLimiter)",
            ),
        ]
        try:
            check_headers(self.default_headers, "default_headers")
        except RequestValidationError as exc:
            raise FlireoError(f"invalid {exc}") from None
        for name, ok, expected in checks:
            if not ok:
                value = getattr(self, name)
                raise FlireoError(f"invalid {name}: must be {expected}, got {value!r} ({_type_name(value)})")

    @classmethod
    def from_env(cls, api_key: str | None, base_url: str | None, **settings: Any) -> ClientConfig:
        """Fill ``api_key`` and ``base_url`` from FLIREO_API_KEY / FLIREO_BASE_URL when not given."""
        key = api_key if api_key is not None else os.environ.get("FLIREO_API_KEY", "")
        url: Any = base_url
        if url is None or url == "":
            url = os.environ.get("FLIREO_BASE_URL") or DEFAULT_BASE_URL
        # A wrong type is reported by the validation in __attrs_post_init__, by name.
        return cls(api_key=key, base_url=url.rstrip("/") if isinstance(url, str) else url, **settings)
