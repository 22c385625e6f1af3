"""The ``flireo_async`` logger; ``FLIREO_LOG=debug`` (or ``info``) turns it on at that level."""

from __future__ import annotations

import logging
import os

logger = logging.getLogger("flireo_async")


def setup_from_env() -> None:
    level = os.environ.get("FLIREO_LOG", "").strip().upper()
    if level in ("DEBUG", "INFO", "WARNING", "ERROR") and not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(level)
