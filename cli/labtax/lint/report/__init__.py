"""Reporters render findings (plain data) as text, JSON or GitHub annotations. They know no rules."""

from __future__ import annotations

import importlib
import os
import re

FORMATS = ("auto", "text", "json", "github")

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(text: str) -> str:
    """Text as every reporter prints it (paths above all): bytes that are not UTF-8 (kept by Python as
    surrogates) and control characters become visible escapes (\\xff, \\n), so no file name can break
    an output's encoding or start a new finding line."""

    def escape(match: re.Match) -> str:
        code = ord(match.group())
        if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's surrogateescape: the original byte
            return f"\\x{code - 0xDC00:02x}"
        return f"\\u{code:04x}" if code > 0xFF else match.group().encode("unicode_escape").decode("ascii")

    return _UNPRINTABLE.sub(escape, text)


def render(fmt: str, result, *, color: bool = False) -> str:
    if fmt == "auto":
        fmt = "github" if os.environ.get("GITHUB_ACTIONS") == "true" else "text"
    return importlib.import_module(f"labtax.lint.report.{fmt}_report").render(result, color=color)
