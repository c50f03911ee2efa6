"""Does the answer belong to its question? Read from the judge model's likelihoods, not asked of it.

A small judge says "3" to most well-formed text (bench/judge.py); what it cannot fake is how likely it finds
the answer after its own question compared with after other questions of the same leaf. With equal priors,
Bayes turns that into the probability that the answer was written for its own question rather than for one
of the others:

    P = sigmoid(log p(answer | question) - log mean_i p(answer | other question_i))

The others are two of the leaf's seed questions (never one with the candidate's own question or answer) and
a neutral request (NEUTRAL: "Write a reply."; for knowledge, the question without any passage), so an answer
that its question does not explain better than no question at all (another leaf's answer, boilerplate) fails
too. An answer written for another question, or generic text that would follow any, scores near 1/2 or below;
an answer that uses what its question asks scores near 1. The threshold is calibrated per leaf like the
judge's (stage "relevance", generate/calibrate.py), THRESHOLD otherwise: 0.9, i.e. the answer at least nine times
likelier after its own question than after the others on average. Measured (bench/judge.py, 2026-12-02): every
held-out seed answer of 8 skill leaves scored 1.00, 14 of 15 knowledge ones >= 0.99 (one 0.59).
Only where the judge model can score a given reply (teacher/base.py Scorer: the embedded model); with a chat
endpoint that cannot, this check decides nothing and the judge alone does.

The same forward pass also says whether the answer reads as finished: a reply cut off mid-sentence is one
after which the model almost never ends its turn. Measured on 32 held-out seed answers and their cut copies
(2026-12-02, SmolLM2-135M): log P(end of turn) was above -9.6 for every seed answer, below -10 for 24 of 29
answers cut to a quarter and 26 of 29 cut in half; so below END_LOGPROB the candidate is rejected as
`unfinished` (a cheap check: no call of its own).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

STAGE = "relevance"
ALTERNATIVES = 2  # other questions per candidate: each costs one more forward pass over question and answer
NEUTRAL = "Write a reply."  # the request that asks for nothing in particular
THRESHOLD = 0.9
# A generated question, the same way: likelier after the leaf's task than after a request for any question?
QUESTION_STAGE = "question_relevance"
NEUTRAL_TASK = "Write a request that someone might send to an assistant."
END_LOGPROB = -10.0  # log P(end of turn right after the answer) below this: it stops mid-way


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


def question_turns(task: str, context: str = "") -> tuple[str, list[str]]:
    """The leaf's task (after the generated context, for grounded skills) asking for a request, against a
    request for any request: a question of another leaf, or one unrelated to the task, fits both alike."""
    own = f"Write a request for this task: {task}"
    if context:
        own = f"{context}\n\n{own} The request must be about the text above."
    return own, [NEUTRAL_TASK]


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


def unfinished(end: float) -> str | None:
    """Why an answer after which the model would almost never end its turn is cut off; None when it reads as
    finished."""
    if end >= END_LOGPROB:
        return None
    return f"the answer stops mid-way: log P(end of turn after it) = {end:.1f} < {END_LOGPROB:.0f}"
