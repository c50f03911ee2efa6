"""Does the answer belong to its question? Read from the judge model's likelihoods, not asked of it.

A small judge says "3" to most well-formed text (bench/judge.py); what it cannot fake is how likely it finds
the answer after its own question compared with after other questions of the same leaf. With equal priors,
Bayes turns that into the probability that the answer was written for its own question rather than for one
of the others:

    P = sigmoid(log p(answer | question) - log mean_i p(answer | other question_i))

An answer written for another question (another seed's, another leaf's) or generic text that would follow
any question scores near 1/2 or below; an answer that uses what its question asks scores near 1. The
threshold is calibrated per leaf like the judge's (stage "relevance", gate/calibrate.py), 0.5 otherwise.
Only where the judge model can score a given reply (teacher/base.py Scorer: the embedded model); with a chat
endpoint that cannot, this check decides nothing and the judge alone does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

STAGE = "relevance"
ALTERNATIVES = 2  # other questions per candidate: each costs one more forward pass over question and answer


def alternatives(
    seeds: Sequence[dict], question: str, answer: str, index: int, count: int = ALTERNATIVES
) -> list[dict]:
    """`count` seeds to compare against, rotating with the candidate index: never one with the candidate's own
    question, nor one whose answer is the candidate's (that seed would explain it trivially)."""
    pool = [
        s
        for s in seeds
        if s.get("question", "").strip() != question.strip() and s.get("answer", "").strip() != answer.strip()
    ]
    if not pool:
        return []
    start = index % len(pool)
    return [pool[(start + k) % len(pool)] for k in range(min(count, len(pool)))]


def probability(own: float | None, others: Sequence[float | None]) -> float | None:
    """P(the answer belongs to its own question rather than to the others), from summed log-likelihoods;
    None when the own one or every other one is missing (past the model's context)."""
    rest = [o for o in others if o is not None]
    if own is None or not rest:
        return None
    top = max(rest)
    log_mean = top + math.log(sum(math.exp(o - top) for o in rest) / len(rest))
    margin = own - log_mean
    if margin >= 0:
        return round(1 / (1 + math.exp(-margin)), 6)
    return round(math.exp(margin) / (1 + math.exp(margin)), 6)
