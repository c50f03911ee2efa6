"""Counts in messages people read: "1 leaf", "3 leaves", never "leaf(s)". The one plural helper: commands,
the comment and the training report all count through it."""

from __future__ import annotations

IRREGULAR = {"leaf": "leaves", "deleted leaf": "deleted leaves", "more leaf": "more leaves"}


def counted(count: int, word: str, plural: str | None = None, *, thousands: bool = False) -> str:
    """`count` and `word`, plural unless the count is one (`plural`, the irregular plural, or "s" added);
    `thousands`: the count with thousands separators (1,000), as the comment writes numbers."""
    number = f"{count:,}" if thousands else str(count)
    return f"{number} {word if count == 1 else plural or IRREGULAR.get(word, word + 's')}"
