"""Freeform skills: question -> judge question -> answer -> checks, relevance, self-consistency where the
answer ends in a number -> judge pair (1-3, keep >= 2)."""

from __future__ import annotations

from labtax.generate import parse
from labtax.generate.gate.decision import Gate
from labtax.generate.gate.relevance import NEUTRAL, QUESTION_STAGE, alternatives, question_turns
from labtax.generate.outcome import Accepted
from labtax.generate.pipelines.common import judge_examples, keeping, mismatched, rotate

PROMPTS = "skill_freeform"
STAGES: tuple[str, ...] = ("question", "judge_question", "answer", "judge_pair")
MIN_SCORE: int = 2


def final_judge(job, item: dict, answer: str) -> tuple[str, dict]:
    task = str(job.leaf.data.get("task_description", "")).strip()
    fields = {"task_description": task, "question": item["question"], "answer": answer}
    return "judge_pair", fields


def judge_shots(job, stage: str) -> list[dict]:
    """The judge's examples: the leaf's first seeds as good ones; the prompt's off-topic questions (question
    judge) or seed questions with another seed's answer (pair judge) as bad ones. The same for every candidate
    and for the leaf's calibration: the threshold is chosen on the prompt that decides, and the embedded teacher
    runs the shared start once (teacher/embedded.py prefix reuse)."""
    seeds = job.prompt_items
    if stage == "judge_question":
        return judge_examples(seeds, list(job.runner.prompts[stage].negatives))
    return judge_examples(seeds, mismatched(seeds))


def relevance_turns(job, item: dict, index: int) -> tuple[str, list[str]]:
    """The candidate's user turn and those of the seeds its answer is compared against (gate/relevance.py)."""
    others = alternatives(job.prompt_items, item["question"], item["answer"], index)
    return item["question"], [seed["question"] for seed in others] + [NEUTRAL]


async def vet_question(job, gate: Gate, candidate: dict, index: int) -> None:
    """The gate's question checks: likelier after the leaf's task than after any request, then the question
    judge."""
    task, question = str(job.leaf.data.get("task_description", "")).strip(), candidate["question"]
    gate.cheap_question(question, {"question": question}, leaf=job.checks)
    own, others = question_turns(task)
    await gate.relevant(own, others, question, {"question": question}, stage=QUESTION_STAGE)
    await gate.judge(
        "judge_question",
        {"task_description": task, "question": question},
        index,
        judge_shots(job, "judge_question"),
        label="question",
        min_score=MIN_SCORE,
        candidate={"question": question},
    )


async def vet_answer(job, gate: Gate, candidate: dict, index: int, finish_reason: str | None) -> None:
    """The gate's answer checks: the cheap checks, relevance, self-consistency (the answer call asked again
    with the same examples), then the pair judge."""
    task = str(job.leaf.data.get("task_description", "")).strip()
    item = {"question": candidate["question"], "answer": candidate["answer"]}
    question, answer = item["question"], item["answer"]
    gate.cheap(question, answer, finish_reason, item, max_words=job.shape.max_answer_words, leaf=job.checks)
    own, others = relevance_turns(job, item, index)
    await gate.relevant(own, others, answer, item)
    fields = {"task_description": task, "question": question}
    await gate.consistency("answer", fields, index, answer_examples(job, index), answer, item)
    await gate.judge(
        "judge_pair",
        {**fields, "answer": answer},
        index,
        judge_shots(job, "judge_pair"),
        label="pair",
        min_score=MIN_SCORE,
        candidate=item,
    )


def answer_examples(job, index: int) -> list[dict]:
    """The seeds the answer stage of candidate `index` is shown (and its self-consistency resample)."""
    return rotate(job.prompt_items, index + 1, 2)


async def candidate(job, index: int) -> Accepted:
    return await keeping(_candidate, job, index)


async def _candidate(job, index: int, sofar: dict) -> Accepted:
    run, task = job.runner, str(job.leaf.data.get("task_description", "")).strip()
    examples = rotate(job.prompt_items, index, 3)
    reply = await run.call("question", {"task_description": task}, index, examples)
    question = sofar["question"] = parse.question(reply.text, "question", reply.finish_reason, job.shape)
    gate = Gate(run)
    await vet_question(job, gate, {"question": question}, index)  # before the answer: a bad question costs none
    fields = {"task_description": task, "question": question}
    reply = await run.call("answer", fields, index, answer_examples(job, index))
    answer = sofar["answer"] = parse.answer(reply.text, reply.finish_reason, "answer")
    await vet_answer(job, gate, {"question": question, "answer": answer}, index, reply.finish_reason)
    verdict = gate.verdict
    return Accepted(
        index,
        question,
        answer,
        question,
        scores=verdict.scores,
        reasons=verdict.reasons,
        probabilities=verdict.probabilities,
        provenance={"seed_examples": [e["question"] for e in examples]},
    )
