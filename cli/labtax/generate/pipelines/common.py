"""Helpers shared by the pipelines."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence

from labtax.generate import parse
from labtax.generate.outcome import Reject


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


def measured(**probabilities: float | None) -> dict[str, float]:
    """The verdicts that came with a probability, by criterion (an Accepted's `probabilities`)."""
    return {name: p for name, p in probabilities.items() if p is not None}


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


def cheap_checks(
    question: str, answer: str, finish_reason: str | None, candidate: dict, *, max_words: int | None = None
) -> None:
    """The gate's free checks before any judge call (generate/gate/checks.py): a failure is its own reason.
    `max_words`: the answer budget, from the leaf's own seeds (seeds.LeafShape)."""
    from labtax.generate.gate.checks import check_answer
    from labtax.generate.seeds import ANSWER_WORDS

    failure = check_answer(question, answer, finish_reason, max_words=max_words or ANSWER_WORDS)
    if failure is not None:
        raise Reject("checks", failure.reason, failure.detail, candidate)


async def judge(
    run, stage: str, fields: dict, index: int, shots: list[dict], *, label: str, min_score: int, candidate: dict
) -> tuple[int, str, float | None]:
    """Ask a judge stage for a 1-3 score: (score, reason, P(score >= min_score) or None).

    Where the judge gave log-probabilities, the probability decides against the stage's threshold (calibrated
    per leaf, else 0.5); else the sampled digit must reach `min_score`. A failing candidate is rejected."""
    verdict = await run.call(stage, fields, index, shots)
    score = parse.score(verdict.text, stage)
    return score, judge_reason(verdict.text, score), decide(run, stage, verdict, score, label, min_score, candidate)


def judge_reason(text: str, score: int) -> str:
    """What the judge said beyond its score: "" where the reply is the score alone ("3", "3."), which is no
    reason (the record shows the score and its probability), else the reply, at most 300 characters."""
    text = text.strip()
    return "" if re.fullmatch(rf"\W*{score}\W*", text) else text[:300]


def decide(run, stage: str, verdict, score: int, label: str, min_score: int, candidate) -> float | None:
    """The gate's decision on one verdict: its probability (None where there is none), or a Reject."""
    from labtax.generate.gate.scores import DEFAULT_THRESHOLD, accept_probability

    probability = accept_probability(verdict.top_logprobs, min_score)
    if probability is None:
        if score < min_score:
            raise Reject(stage, "judge_score", f"{label} scored {score} < {min_score}", candidate)
        return None
    threshold = run.thresholds.get(stage, DEFAULT_THRESHOLD)
    if probability < threshold:
        raise Reject(
            stage,
            "judge_score",
            f"{label}: P(score >= {min_score}) = {probability:.3f} < threshold {threshold:.3f} (sampled {score})",
            candidate,
        )
    return probability


async def relevant(
    run, own: str, others: Sequence[str], reply: str, candidate: dict, *, stage: str = "relevance"
) -> float | None:
    """P(the reply belongs to its own user turn `own` rather than to `others`) from the judge model's
    likelihoods (gate/relevance.py); below the stage's threshold the candidate is rejected as off_topic; an
    answer that the model would not end there, as unfinished.
    None (nothing decided) where the judge cannot score or there is nothing to compare against."""
    from labtax.generate.gate.relevance import QUESTION_STAGE, THRESHOLD, probability, unfinished

    if not others:
        return None
    values = await run.loglikelihood([[{"role": "user", "content": text}] for text in (own, *others)], reply)
    if values is None or values[0] is None:
        return None
    cut = unfinished(values[0].end) if stage != QUESTION_STAGE else None
    if cut is not None:
        raise Reject("checks", "unfinished", cut, candidate)
    p = probability(values[0].total, [v.total for v in values[1:] if v is not None])
    if p is None:
        return None
    threshold = run.thresholds.get(stage, THRESHOLD)
    if p < threshold:
        what = (
            "the question fits a request for any request about as well as the leaf's task"
            if stage == QUESTION_STAGE
            else "the answer fits other questions of the leaf about as well as its own"
        )
        raise Reject(
            stage,
            "off_topic",
            f"{what}: P(its own among {len(others) + 1}) = {p:.3f} < threshold {threshold:.3f}",
            candidate,
        )
    return p
