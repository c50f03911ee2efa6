"""Helpers shared by the pipelines."""

from __future__ import annotations


def rotate(items: list, index: int, count: int) -> list:
    """`count` items starting at a position that moves with the sample index, for prompt variety."""
    if not items:
        return []
    start = index % len(items)
    return [items[(start + k) % len(items)] for k in range(min(count, len(items)))]
