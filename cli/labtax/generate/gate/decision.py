"""The gate's decision on one candidate, as one function: `decide(job, candidate, index) -> Verdict`.

A candidate is a dict with what was written for the leaf: `question` and `answer` (skills), plus `context`
for grounded skills, and for knowledge `context` (the chunk's text) and `chunk` (its id). `decide` runs the
leaf's pipeline's gate (its `vet_question`, then its `vet_answer`) through a `Gate`, which asks the judge
and the scorer and decides every check at the leaf's thresholds (calibrated per leaf, else each check's
default). Generation calls the same parts while it writes a candidate (the question part before the answer
is written, so a rejected question costs no answer call); `labtax vet`, the calibration's counterpart on
outside data, and the bench (bench/judge.py) call `decide`.

Every check that measured something is one `Check` in the `Verdict`: its probability (judges, relevance),
the threshold it was held to, the judge's sampled score and words, and the rejection where it failed. The
first failure is the verdict's `reject`; with `exhaustive`, every check runs even after one failed (the
bench measures each part alone), and the decision is the same: accepted only when every check passed.

The job is duck-typed (the pipelines own `LeafJob`, one layer up): `job.pipeline` (its `vet_question` and
`vet_answer`), `job.runner` (`call`, `loglikelihood`, `thresholds`), `job.shape`, `job.prompt_items`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labtax.generate import parse
from labtax.generate.outcome import Reject

if TYPE_CHECKING:
    from labtax.generate.gate.checks import LeafChecks

PARTS = ("question", "answer")


@dataclass
class Check:
    """One check's outcome. `name`: the criterion (checks, question_relevance, question, relevance,
    consistency, pair, faithful, relevant, standalone); `probability`: P(accept) where it measured one."""

    name: str
    passed: bool
    probability: float | None = None
    threshold: float | None = None
    score: int | None = None  # a judge's sampled 1-3 digit
    reason: str = ""  # a judge's words beyond its score
    reject: Reject | None = None  # why it failed


@dataclass
class Verdict:
    checks: list[Check] = field(default_factory=list)
    # As an accepted sample carries them (outcome.Accepted): judges' scores and words, and every probability.
    scores: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    probabilities: dict[str, float] = field(default_factory=dict)

    @property
    def reject(self) -> Reject | None:
        """The first failed check's rejection (the one generation reports); None when accepted."""
        return next((c.reject for c in self.checks if not c.passed), None)

    @property
    def accepted(self) -> bool:
        return all(c.passed for c in self.checks)

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)


class Gate:
    """Runs and decides a candidate's checks, recording each in `verdict`; a failure raises its Reject unless
    `exhaustive`. `thresholds`: stage -> threshold (default: the runner's, which calibration set)."""

    def __init__(
        self,
        run,
        *,
        thresholds: Mapping[str, float] | None = None,
        exhaustive: bool = False,
        chunk: str | None = None,
    ):
        self.run = run
        self.thresholds = run.thresholds if thresholds is None else thresholds
        self.exhaustive = exhaustive
        self.chunk = chunk  # a knowledge candidate's chunk id, set on every rejection
        self.verdict = Verdict()

    def record(self, check: Check) -> None:
        if check.reject is not None and self.chunk is not None:
            check.reject.chunk = self.chunk
        self.verdict.checks.append(check)
        if check.probability is not None:
            self.verdict.probabilities[check.name] = check.probability
        if check.score is not None:
            self.verdict.scores[check.name] = check.score
            self.verdict.reasons[check.name] = check.reason
        if check.reject is not None and not self.exhaustive:
            raise check.reject

    def failed(self, name: str, reject: Reject) -> None:
        """A check whose call failed or whose reply could not be used (a Reject from the runner or parser):
        recorded, and raised unless exhaustive."""
        self.record(Check(name, False, reject=reject))

    def cheap(
        self,
        question: str,
        answer: str,
        finish_reason: str | None,
        candidate: dict,
        *,
        max_words: int | None = None,
        context: str = "",
        leaf: LeafChecks | None = None,
    ) -> None:
        """The free checks before any judge call (gate/checks.py): a failure is its own reason. `max_words`:
        the answer budget, from the leaf's own seeds (seeds.LeafShape); `context`: the input the answer must not
        merely hand back; `leaf`: what the checks know of the leaf (LeafJob.checks)."""
        from labtax.generate.gate.checks import ANY_LEAF, check_answer
        from labtax.generate.seeds import ANSWER_WORDS

        failure = check_answer(
            question, answer, finish_reason, max_words=max_words or ANSWER_WORDS, context=context, leaf=leaf or ANY_LEAF
        )
        self._checked("checks", failure, candidate)

    def cheap_question(
        self, question: str, candidate: dict, *, leaf: LeafChecks | None = None, context: str = ""
    ) -> None:
        """The free checks on a written task (and its generated context), before its judge or its answer is asked
        for (gate/checks.py)."""
        from labtax.generate.gate.checks import ANY_LEAF, check_question

        self._checked("question_checks", check_question(question, leaf or ANY_LEAF, context), candidate)

    def _checked(self, name: str, failure, candidate: dict) -> None:
        if failure is None:
            self.record(Check(name, True))
        else:
            self.record(Check(name, False, reject=Reject(name, failure.reason, failure.detail, candidate)))

    async def judge(
        self, stage: str, fields: dict, index: int, shots: list[dict], *, label: str, min_score: int, candidate: dict
    ) -> None:
        """Ask a judge stage for a 1-3 score, recorded as criterion `label`. Where the judge gave
        log-probabilities, P(score >= min_score) decides against the stage's threshold (calibrated per leaf,
        else 0.5); else the sampled digit must reach `min_score`."""
        from labtax.generate.gate.scores import DEFAULT_THRESHOLD, accept_probability

        try:
            verdict = await self.run.call(stage, fields, index, shots)
            score = parse.score(verdict.text, stage)
        except Reject as reject:  # a failed call or an unusable reply vets nothing
            self.failed(label, reject)
            return
        reason = judge_reason(verdict.text, score)
        probability = accept_probability(verdict.top_logprobs, min_score)
        check = Check(label, True, probability, score=score, reason=reason)
        if probability is None:
            if score < min_score:
                check.passed = False
                check.reject = Reject(stage, "judge_score", f"{label} scored {score} < {min_score}", candidate)
        else:
            check.threshold = threshold = self.thresholds.get(stage, DEFAULT_THRESHOLD)
            if probability < threshold:
                check.passed = False
                detail = f"{label}: P(score >= {min_score}) = {probability:.3f} < threshold {threshold:.3f} (sampled {score})"
                check.reject = Reject(stage, "judge_score", detail, candidate)
        self.record(check)

    async def relevant(
        self, own: str, others: Sequence[str], reply: str, candidate: dict, *, stage: str = "relevance"
    ) -> None:
        """P(the reply belongs to its own user turn `own` rather than to `others`) from the judge model's
        likelihoods (gate/relevance.py), recorded as criterion `stage`; below the stage's threshold the
        candidate is rejected as off_topic; an answer that the model would not end there, as unfinished.
        Nothing is recorded (nothing decided) where the judge cannot score or there is nothing to compare."""
        from labtax.generate.gate.relevance import QUESTION_STAGE, THRESHOLD, probability, unfinished

        if not others:
            return
        contexts = [[{"role": "user", "content": text}] for text in (own, *others)]
        try:
            values = await self.run.loglikelihood(contexts, reply)
        except Reject as reject:
            self.failed(stage, reject)
            return
        if values is None or values[0] is None:
            return
        cut = unfinished(values[0].end) if stage != QUESTION_STAGE else None
        p = probability(values[0].total, [v.total for v in values[1:] if v is not None])
        if cut is not None:
            self.record(Check(stage, False, p, reject=Reject("checks", "unfinished", cut, candidate)))
            return
        if p is None:
            return
        threshold = self.thresholds.get(stage, THRESHOLD)
        check = Check(stage, p >= threshold, p, threshold)
        if not check.passed:
            what = (
                "the question fits a request for any request about as well as the leaf's task"
                if stage == QUESTION_STAGE
                else "the answer fits other questions of the leaf about as well as its own"
            )
            detail = f"{what}: P(its own among {len(others) + 1}) = {p:.3f} < threshold {threshold:.3f}"
            check.reject = Reject(stage, "off_topic", detail, candidate)
        self.record(check)

    async def consistency(
        self, stage: str, fields: dict, index: int, examples: Sequence[dict], answer: str, candidate: dict
    ) -> None:
        """Self-consistency (gate/consistency.py), recorded where the answer ends in a number."""
        from labtax.generate.gate.consistency import check_consistency, final_number

        if final_number(answer) is None:
            return
        try:
            await check_consistency(self.run, stage, fields, index, examples, answer, candidate)
        except Reject as reject:
            self.record(Check("consistency", False, reject=reject))
        else:
            self.record(Check("consistency", True))


def judge_reason(text: str, score: int) -> str:
    """What the judge said beyond its score: "" where the reply is the score alone ("3", "3."), which is no
    reason (the record shows the score and its probability), else the reply, at most 300 characters."""
    text = text.strip()
    return "" if re.fullmatch(rf"\W*{score}\W*", text) else text[:300]


async def decide(
    job: Any,
    candidate: dict,
    index: int,
    *,
    parts: Sequence[str] = PARTS,
    finish_reason: str | None = "stop",
    thresholds: Mapping[str, float] | None = None,
    exhaustive: bool = False,
) -> Verdict:
    """The gate's verdict on `candidate` (a dict: question, answer, and context / chunk where the leaf's kind
    has one) of `job`'s leaf, numbered `index` (the judge calls' seed and cache key): the leaf pipeline's
    question checks, then its answer checks (`parts` picks), at the leaf's thresholds (`thresholds`
    overrides). `finish_reason`: how the answer's reply ended ("stop" for text written elsewhere).
    Never raises a Reject: a rejection is the verdict's `reject`."""
    gate = Gate(job.runner, thresholds=thresholds, exhaustive=exhaustive)
    try:
        if "question" in parts:
            await job.pipeline.vet_question(job, gate, candidate, index)
        if "answer" in parts:
            await job.pipeline.vet_answer(job, gate, candidate, index, finish_reason)
    except Reject as reject:  # recorded where a check raised it; anything else is recorded here
        if gate.verdict.reject is not reject:
            gate.verdict.checks.append(Check(reject.stage, False, reject=reject))
    return gate.verdict
