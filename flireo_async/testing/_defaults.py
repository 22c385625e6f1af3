"""Defaults of the fake server that light modules (the command-line flags) need too."""

__all__ = ["DEFAULT_API_KEY"]

DEFAULT_API_KEY = "fl_test_fake"
"""The key a fake server accepts unless told otherwise."""
