"""Helpers shared by the pipelines."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from labtax.generate.gate.decision import judge_reason
from labtax.generate.outcome import Reject

__all__ = ["judge_examples", "judge_reason", "keeping", "mismatched", "rotate"]


def rotate(items: list, index: int, count: int) -> list:
    """`count` items starting at a position that moves with the sample index, for prompt variety."""
    if not items:
        return []
    start = index % len(items)
    return [items[(start + k) % len(items)] for k in range(min(count, len(items)))]


GOOD, BAD = 3, 1


def judge_examples(good: list[dict], bad: list[dict], count: int = 2) -> list[dict]:
    """Few-shot turns for a judge: bad and good examples alternating, a good one last.

    Good ones come from the leaf's own seeds, so the judge is calibrated on what this leaf asks for.
    """
    good, bad = good[:count], bad[:count]
    turns = []
    for k in range(max(len(good), len(bad))):
        if k < len(bad):
            turns.append({**bad[k], "score": BAD})
        if k < len(good):
            turns.append({**good[k], "score": GOOD})
    return turns


def mismatched(items: list[dict]) -> list[dict]:
    """Each seed question with the next seed's answer: realistic wrong answers for a pair judge."""
    if len(items) < 2:
        return []
    return [{**item, "answer": items[(n + 1) % len(items)]["answer"]} for n, item in enumerate(items)]


async def keeping(body: Callable[..., Awaitable], job, index: int, *args):
    """Run a pipeline's candidate `body(job, index, *args, sofar)`: whatever rejects it, the rejection carries
    every field the candidate had so far (the context a question was about, the question and answer a judge
    judged), never only the reply that failed (that is the Reject's `reply`)."""
    sofar: dict = {}
    try:
        return await body(job, index, *args, sofar)
    except Reject as reject:
        given = reject.candidate if isinstance(reject.candidate, dict) else {}
        reject.candidate = {**sofar, **given}
        raise
