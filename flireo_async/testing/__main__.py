"""``python -m flireo_async.testing --port 8080 [--rate-limit N] [--speed X]``."""

from __future__ import annotations

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
