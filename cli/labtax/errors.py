"""Errors that end a command with a clear message (exit 2) instead of a traceback."""

from __future__ import annotations


class LabtaxError(Exception):
    """A usage or environment problem; the message says what to do about it."""

    exit_code = 2
