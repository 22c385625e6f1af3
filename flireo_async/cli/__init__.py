"""The ``flireo`` command: exports, bulk outbound calls (alone or as a fleet), a local mock server
and a demo. ``main(argv)`` runs it and returns the exit code."""

from ._main import build_parser, main

__all__ = ["main", "build_parser"]
