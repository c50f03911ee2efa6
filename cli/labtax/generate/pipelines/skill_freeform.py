"""Freeform skills: question -> judge question -> answer -> checks, relevance, self-consistency where the
answer ends in a number -> judge pair (1-3, keep >= 2)."""

from __future__ import annotations

from labtax.generate import parse
from labtax.generate.gate.consistency import check_consistency
from labtax.generate.gate.relevance import NEUTRAL, QUESTION_STAGE, alternatives, question_turns
from labtax.generate.outcome import Accepted
from labtax.generate.pipelines.common import (
    cheap_checks,
    judge,
    judge_examples,
    keeping,
    measured,
    mismatched,
    relevant,
    rotate,
)

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


async def candidate(job, index: int) -> Accepted:
    return await keeping(_candidate, job, index)


async def _candidate(job, index: int, sofar: dict) -> Accepted:
    run, task = job.runner, str(job.leaf.data.get("task_description", "")).strip()
    seeds = job.prompt_items
    examples = rotate(seeds, index, 3)
    reply = await run.call("question", {"task_description": task}, index, examples)
    question = sofar["question"] = parse.question(reply.text, "question", reply.finish_reason, job.shape)
    fields = {"task_description": task, "question": question}
    own, others = question_turns(task)
    q_relevance = await relevant(run, own, others, question, {"question": question}, stage=QUESTION_STAGE)
    shots = judge_shots(job, "judge_question")
    q_score, q_reason, q_probability = await judge(
        run,
        "judge_question",
        fields,
        index,
        shots,
        label="question",
        min_score=MIN_SCORE,
        candidate={"question": question},
    )
    answer_examples = rotate(seeds, index + 1, 2)
    reply = await run.call("answer", fields, index, answer_examples)
    answer = sofar["answer"] = parse.answer(reply.text, reply.finish_reason, "answer")
    cheap_checks(
        question,
        answer,
        reply.finish_reason,
        {"question": question, "answer": answer},
        max_words=job.shape.max_answer_words,
    )
    own, others = relevance_turns(job, {"question": question, "answer": answer}, index)
    relevance = await relevant(run, own, others, answer, {"question": question, "answer": answer})
    await check_consistency(
        run, "answer", fields, index, answer_examples, answer, {"question": question, "answer": answer}
    )
    shots = judge_shots(job, "judge_pair")
    pair_score, pair_reason, pair_probability = await judge(
        run,
        "judge_pair",
        {**fields, "answer": answer},
        index,
        shots,
        label="pair",
        min_score=MIN_SCORE,
        candidate={"question": question, "answer": answer},
    )
    reasons = {"question": q_reason, "pair": pair_reason}
    return Accepted(
        index,
        question,
        answer,
        question,
        scores={"question": q_score, "pair": pair_score},
        reasons=reasons,
        probabilities=measured(
            question=q_probability, question_relevance=q_relevance, pair=pair_probability, relevance=relevance
        ),
        provenance={"seed_examples": [e["question"] for e in examples]},
    )
