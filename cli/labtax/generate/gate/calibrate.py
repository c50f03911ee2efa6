"""Per-leaf calibration: before a leaf's samples are called vetted, the gate (cheap checks, then the leaf's
final judge) must tell the leaf's own held-out seeds (good) from corrupted copies of them (bad).

A handful of extra calls per leaf, cached like all others. When the gate accepts the bad about as often as
the good, the run says so and the leaf's samples are marked unvetted instead of presented as judged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from labtax.generate.gate.checks import check_answer

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
    """Run the gate on the leaf's held-out seeds and their corruptions."""
    from labtax.generate.pipelines import parse
    from labtax.generate.pipelines.common import judge_examples, mismatched
    from labtax.generate.pipelines.outcome import Reject

    report = GateReport()
    if not job.heldout:
        return report
    seeds = job.prompt_items
    shots = judge_examples(seeds[:2], mismatched(seeds)[:2])
    index = CALIBRATION_INDEX

    async def passes(item: dict, answer: str) -> bool:
        nonlocal index
        index += 1
        if check_answer(item["question"], answer, "stop") is not None:
            return False
        stage, fields = job.pipeline.final_judge(job, item, answer)
        try:
            reply = await job.runner.call(stage, fields, index, shots)
            return parse.score(reply.text, stage) >= min_score
        except Reject:  # an unusable judge reply vets nothing
            return False

    for item in job.heldout:
        report.good_total += 1
        report.good_accepted += await passes(item, item["answer"])
        for bad in corruptions(item, seeds):
            report.bad_total += 1
            report.bad_rejected += not await passes(item, bad)
    good_rate = report.good_accepted / report.good_total
    bad_rate = 1 - report.bad_rejected / report.bad_total if report.bad_total else 1.0
    report.separates = good_rate - bad_rate >= MARGIN
    return report
