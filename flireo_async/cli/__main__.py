"""``python -m flireo_async.cli ...``: the ``flireo`` command."""

from ._main import main

if __name__ == "__main__":
    raise SystemExit(main())
