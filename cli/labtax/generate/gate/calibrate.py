"""Per-leaf calibration: before a leaf's samples are called vetted, the gate (cheap checks, then the leaf's
final judge) must tell the leaf's own held-out seeds (good) from corrupted copies of them (bad).

A handful of extra calls per leaf, cached like all others. When the gate accepts the bad about as often as
the good, the run says so and the leaf's samples are marked unvetted instead of presented as judged.

Where the judge's verdicts come with probabilities (gate/scores.py), the same calls also choose the leaf's
threshold on them: the one that best separates these good from these bad (recorded as `threshold`); the
leaf's final judge then decides every candidate against it. Where none came back, the sampled digit decides.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from labtax.generate.gate.checks import check_answer
from labtax.generate.gate.scores import DEFAULT_THRESHOLD, accept_probability, accepts, choose_threshold, roc_auc

if TYPE_CHECKING:
    from labtax.generate.run import LeafJob

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
    from labtax.generate.pipelines import parse
    from labtax.generate.pipelines.common import judge_examples, mismatched
    from labtax.generate.pipelines.outcome import Reject

    report = GateReport()
    if not job.heldout:
        return report
    seeds = job.prompt_items
    shots = judge_examples(seeds[:2], mismatched(seeds)[:2])
    index = CALIBRATION_INDEX
    stages: set[str] = set()

    async def verdict(item: dict, answer: str) -> bool | float:
        """The gate's verdict: False (rejected: checks, or an unusable judge reply), else the probability that
        the judge accepts, or True/False from the sampled digit where there is none."""
        nonlocal index
        index += 1
        if check_answer(item["question"], answer, "stop") is not None:
            return False
        stage, fields = job.pipeline.final_judge(job, item, answer)
        stages.add(stage)
        try:
            reply = await job.runner.call(stage, fields, index, shots)
            score = parse.score(reply.text, stage)
        except Reject:  # an unusable judge reply vets nothing
            return False
        probability = accept_probability(reply.top_logprobs, min_score)
        return score >= min_score if probability is None else probability

    good: list[bool | float] = []
    bad: list[bool | float] = []
    for item in job.heldout:
        good.append(await verdict(item, item["answer"]))
        bad += [await verdict(item, answer) for answer in corruptions(item, seeds)]
    good_p = [v for v in good if not isinstance(v, bool)]
    bad_p = [v for v in bad if not isinstance(v, bool)]
    report.probabilities = len(good_p) + len(bad_p)
    threshold = choose_threshold(good, bad)
    if threshold is not None and len(stages) == 1:
        report.threshold, report.roc_auc = threshold, roc_auc(good_p, bad_p)
        job.runner.thresholds[stages.pop()] = threshold
    at = DEFAULT_THRESHOLD if report.threshold is None else report.threshold
    report.good_total, report.good_accepted = len(good), sum(accepts(v, at) for v in good)
    report.bad_total, report.bad_rejected = len(bad), sum(not accepts(v, at) for v in bad)
    good_rate = report.good_accepted / report.good_total
    bad_rate = 1 - report.bad_rejected / report.bad_total if report.bad_total else 1.0
    report.separates = good_rate - bad_rate >= MARGIN
    return report
