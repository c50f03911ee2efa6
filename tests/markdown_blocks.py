"""Fenced code blocks of the project's Markdown files, for the tests that run the documentation as written."""

from __future__ import annotations

import re
from pathlib import Path

FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)


def blocks(path: Path, lang: str | None = None) -> list[str]:
    """Every fenced block of `path` (in `lang` when given), its indentation removed."""
    found = []
    for match in FENCE.finditer(path.read_text(encoding="utf-8")):
        if lang is None or match["lang"] == lang:
            indent = len(match["indent"])
            found.append("".join(line[indent:] for line in match["body"].splitlines(keepends=True)))
    return found


def block_with(path: Path, lang: str, text: str) -> str:
    """The one `lang` block of `path` that contains `text`."""
    chosen = [block for block in blocks(path, lang) if text in block]
    assert len(chosen) == 1, f"{path.name}: {len(chosen)} ```{lang} blocks contain {text!r}"
    return chosen[0]
