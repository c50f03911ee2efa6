"""Helpers shared by the pipelines: picking seed examples for a prompt, formatting them."""

from __future__ import annotations


def rotate(items: list, index: int, count: int) -> list:
    """`count` items starting at a position that moves with the sample index, for prompt variety."""
    if not items:
        return []
    start = index % len(items)
    return [items[(start + k) % len(items)] for k in range(min(count, len(items)))]


def numbered_questions(items: list[dict]) -> str:
    return "\n".join(f"- {item['question']}" for item in items)


def worked_examples(items: list[dict]) -> str:
    return "".join(f"Task: {item['question']}\nAnswer: {item['answer']}\n\n" for item in items)
