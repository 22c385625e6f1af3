"""The ``flireo_async`` logger; ``FLIREO_LOG=debug`` (or ``info``) turns it on at that level."""

from __future__ import annotations

import logging
import os

logger = logging.getLogger("flireo_async")

# The records of a failed attempt that will or may be retried. Their format strings are part of
# the contract with listeners such as the CLI, which recognise them to show retries as they happen.
ATTEMPT_FAILED = "%s %s failed on attempt %d: %s%s"
"""method, path, attempt (1-based), error class name, and "; retrying" or ""."""
STATUS_RETRIED = "%s %s -> %d (attempt %d), retrying in %.2fs"
"""method, path, status, attempt (1-based), seconds until the next attempt."""


def setup_from_env() -> None:
    level = os.environ.get("FLIREO_LOG", "").strip().upper()
    if level in ("DEBUG", "INFO", "WARNING", "ERROR") and not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(level)
