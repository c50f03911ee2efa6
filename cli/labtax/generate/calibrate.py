"""Per-leaf calibration: before a leaf's samples are called vetted, the gate (cheap checks, then the leaf's
final judge) must tell the leaf's own held-out seeds (good) from corrupted copies of them (bad).

A handful of extra calls per leaf, cached like all others. When the gate accepts the bad about as often as
the good, the run says so and the leaf's samples are marked unvetted instead of presented as judged. When a
calibration call fails (the endpoint's error, after the client's retries), the leaf's calibration is
incomplete, said in its note: nothing is chosen from part of the examples, and a re-run makes the calls that
failed (a finished calibration's re-run makes none).

Where the judge's verdicts come with probabilities (gate/scores.py), the same calls also choose the leaf's
threshold on them: the one that best separates these good from these bad (recorded as `threshold`); the
leaf's final judge then decides every candidate against it. Where none came back, the sampled digit decides.
Where the judge model can score (gate/relevance.py), the relevance check's threshold is chosen the same way,
first, as it runs first; what it rejects counts as rejected when the judge's threshold is chosen.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from labtax.generate.gate.checks import check_answer
from labtax.generate.gate.relevance import STAGE as RELEVANCE
from labtax.generate.gate.relevance import THRESHOLD as RELEVANCE_THRESHOLD
from labtax.generate.gate.relevance import probability as relevance_probability
from labtax.generate.gate.relevance import unfinished
from labtax.generate.gate.scores import DEFAULT_THRESHOLD, accept_probability, accepts, choose_threshold, roc_auc

if TYPE_CHECKING:
    from labtax.generate.pipelines import LeafJob

CALIBRATION_INDEX = 1_000_000  # candidate indexes of calibration calls: never a real candidate's cache key
REFUSAL = "I'm sorry, but I can't help with that."
MARGIN = 0.5  # good accepted at least this much more often than bad: the gate separates them


@dataclass
class GateReport:
    good_accepted: int = 0
    good_total: int = 0
    bad_rejected: int = 0
    bad_total: int = 0
    separates: bool | None = None  # None: no held-out seeds to calibrate on
    # The final judge's probability threshold chosen here; None when its verdicts came with no probabilities
    # (the sampled digit decided). `probabilities`: how many verdicts had one; `roc_auc` over them.
    threshold: float | None = None
    probabilities: int = 0
    roc_auc: float | None = None
    # The relevance check's threshold chosen here (gate/relevance.py) and its ROC AUC; None where it measured
    # nothing (a judge that cannot score, a pipeline without it) or not every example.
    relevance_threshold: float | None = None
    relevance_roc_auc: float | None = None
    # Calibration calls that failed (teacher_error after the client's retries): a verdict left out would change
    # the threshold and `separates` between identical runs, so with any failed the leaf is calibration
    # incomplete: default thresholds, `separates` None (samples vetted "unknown"), and a re-run completes it.
    failed_calls: int = 0
    incomplete: bool = False
    failure: str = ""  # the first failed call's error

    def as_dict(self) -> dict:
        return asdict(self)


def corruptions(item: dict, others: list[dict]) -> list[str]:
    """Wrong answers for a held-out seed: another seed's answer, a refusal, the answer cut to a quarter."""
    answer = item["answer"]
    wrong = [o["answer"] for o in others if o["answer"].strip() and o["answer"].strip() != answer.strip()]
    bad = [wrong[0]] if wrong else []
    bad.append(REFUSAL)
    words = answer.split()
    if len(words) >= 8:
        bad.append(" ".join(words[: len(words) // 4]))
    return bad


async def calibrate(job: LeafJob, min_score: int) -> GateReport:
    """Run the gate on the leaf's held-out seeds and their corruptions; set the final judge's threshold."""
    from labtax.generate import parse
    from labtax.generate.outcome import Reject

    report = GateReport()
    if not job.heldout:
        return report
    seeds = job.prompt_items
    index = CALIBRATION_INDEX
    stages: set[str] = set()

    turns = job.pipeline.relevance_turns

    def failed(reject: Reject) -> None:
        """Count a call that failed (not one whose reply was unusable: that is a verdict)."""
        if reject.reason != "teacher_error":
            return
        report.failed_calls += 1
        detail = str(reject.detail)
        report.failure = report.failure or f"{reject.stage}: {detail[:200]}{'...' if len(detail) > 200 else ''}"

    async def verdict(item: dict, answer: str) -> tuple[bool | float, bool | float | None]:
        """The gate's verdicts on one answer: (judge, relevance). The judge's is False (rejected: checks, or an
        unusable reply), else the probability that it accepts, or True/False from the sampled digit where there
        is none; relevance's is its probability (gate/relevance.py), False after the checks, None unmeasured."""
        nonlocal index
        index += 1
        failure = check_answer(
            item["question"],
            answer,
            "stop",
            max_words=job.shape.max_answer_words,
            context="" if job.leaf.kind == "knowledge" else str(item.get("context") or ""),
            leaf=job.checks,
        )
        if failure is not None:
            return False, False
        relevance = None
        own, others = turns(job, {**item, "answer": answer}, index)
        if others:
            context = [[{"role": "user", "content": text}] for text in (own, *others)]
            try:
                values = await job.runner.loglikelihood(context, answer)
            except Reject as reject:
                failed(reject)
                values = None
            if values is not None and values[0] is not None:
                if unfinished(values[0].end) is not None:
                    return False, False
                others_total = [v.total for v in values[1:] if v is not None]
                relevance = relevance_probability(values[0].total, others_total)
        stage, fields = job.pipeline.final_judge(job, item, answer)
        stages.add(stage)
        try:
            reply = await job.runner.call(stage, fields, index, job.pipeline.judge_shots(job, stage))
            score = parse.score(reply.text, stage)
        except Reject as reject:  # an unusable judge reply vets nothing
            failed(reject)
            return False, relevance
        probability = accept_probability(reply.top_logprobs, min_score)
        return (score >= min_score if probability is None else probability), relevance

    good: list[tuple[bool | float, bool | float | None]] = []
    bad: list[tuple[bool | float, bool | float | None]] = []
    for item in job.heldout:
        good.append(await verdict(item, item["answer"]))
        bad += [await verdict(item, answer) for answer in corruptions(item, seeds)]
    if report.failed_calls:
        report.incomplete = True  # every call was still made: what succeeded is cached for the re-run
        return report
    # Relevance first (it runs first in generation); what it rejects reaches the judge as rejected.
    rel_good, rel_bad = [r for _, r in good if r is not None], [r for _, r in bad if r is not None]
    rel_threshold = choose_threshold(rel_good, rel_bad, default=RELEVANCE_THRESHOLD)
    if rel_threshold is not None and len(rel_good) == len(good) and len(rel_bad) == len(bad):
        report.relevance_threshold = rel_threshold
        report.relevance_roc_auc = roc_auc(
            [v for v in rel_good if not isinstance(v, bool)], [v for v in rel_bad if not isinstance(v, bool)]
        )
        job.runner.thresholds[RELEVANCE] = rel_threshold

    def combined(pair: tuple[bool | float, bool | float | None]) -> bool | float:
        judged, relevance = pair
        # As generation decides: at the chosen threshold, else the check's own default.
        threshold = RELEVANCE_THRESHOLD if report.relevance_threshold is None else report.relevance_threshold
        rejected = relevance is not None and not accepts(relevance, threshold)
        return False if rejected else judged

    good_v, bad_v = [combined(v) for v in good], [combined(v) for v in bad]
    good_p = [v for v in good_v if not isinstance(v, bool)]
    bad_p = [v for v in bad_v if not isinstance(v, bool)]
    report.probabilities = len(good_p) + len(bad_p)
    threshold = choose_threshold(good_v, bad_v)
    if threshold is not None and len(stages) == 1:
        report.threshold, report.roc_auc = threshold, roc_auc(good_p, bad_p)
        job.runner.thresholds[stages.pop()] = threshold
    at = DEFAULT_THRESHOLD if report.threshold is None else report.threshold
    report.good_total, report.good_accepted = len(good_v), sum(accepts(v, at) for v in good_v)
    report.bad_total, report.bad_rejected = len(bad_v), sum(not accepts(v, at) for v in bad_v)
    good_rate = report.good_accepted / report.good_total
    bad_rate = 1 - report.bad_rejected / report.bad_total if report.bad_total else 1.0
    report.separates = good_rate - bad_rate >= MARGIN
    return report
