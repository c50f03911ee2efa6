"""Counts in messages people read: "1 leaf", "3 leaves", never "leaf(s)"."""

from __future__ import annotations

IRREGULAR = {"leaf": "leaves", "deleted leaf": "deleted leaves"}


def counted(count: int, word: str) -> str:
    """`count` and `word`, plural unless the count is one ("s" added, or the irregular plural)."""
    return f"{count} {word if count == 1 else IRREGULAR.get(word, word + 's')}"
