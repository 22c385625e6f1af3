"""Client configuration: every limit and default in one visible, immutable place."""

from __future__ import annotations

import ipaddress
import os
from typing import Any
from urllib.parse import urlsplit

import attrs

from ._errors import FlireoError
from ._ratelimit import LocalRateLimiter, RateLimiter

__all__ = ["ClientConfig", "DEFAULT_BASE_URL"]

DEFAULT_BASE_URL = "https://api.flireo.com/api/v1"


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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
    rate_limiter: RateLimiter = attrs.field(factory=LocalRateLimiter)
    """Who paces the requests: in-process by default; see :mod:`flireo_async.fleet` for a
    budget shared by many processes."""

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.api_key, str) or not self.api_key.strip():
            raise FlireoError(
                "no API key: pass AsyncFlireo(api_key=...) or set the FLIREO_API_KEY environment variable"
            )
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise FlireoError(f"base_url must be an http(s) URL, got {self.base_url!r}")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise FlireoError(
                f"base_url {self.base_url!r} uses plain http: the API key would travel unencrypted; "
                "use https (http is allowed only for loopback hosts such as 127.0.0.1)"
            )
        checks = [
            ("timeout", self.timeout > 0),
            ("max_retries", isinstance(self.max_retries, int) and self.max_retries >= 0),
            ("max_concurrency", isinstance(self.max_concurrency, int) and self.max_concurrency >= 1),
            (
                "rate_limit",
                self.rate_limit is None or (isinstance(self.rate_limit, int) and self.rate_limit >= 1),
            ),
            ("prefetch", isinstance(self.prefetch, int) and self.prefetch >= 0),
            ("max_retry_wait", self.max_retry_wait >= 0),
            ("rate_limiter", isinstance(self.rate_limiter, RateLimiter)),
        ]
        for name, ok in checks:
            if not ok:
                raise FlireoError(f"invalid {name}: {getattr(self, name)!r}")

    @classmethod
    def from_env(cls, api_key: str | None, base_url: str | None, **settings: Any) -> ClientConfig:
        """Fill ``api_key`` and ``base_url`` from FLIREO_API_KEY / FLIREO_BASE_URL when not given."""
        key = api_key if api_key is not None else os.environ.get("FLIREO_API_KEY", "")
        url = base_url or os.environ.get("FLIREO_BASE_URL") or DEFAULT_BASE_URL
        return cls(api_key=key, base_url=url.rstrip("/"), **settings)
