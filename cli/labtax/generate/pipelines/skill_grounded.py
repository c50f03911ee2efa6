"""Grounded skills: new context -> question about it -> judge -> answer using it -> judge pair."""

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

PROMPTS = "skill_grounded"
STAGES: tuple[str, ...] = ("context", "question", "judge_question", "answer", "judge_pair")
MIN_SCORE: int = 2


def final_judge(job, item: dict, answer: str) -> tuple[str, dict]:
    task = str(job.leaf.data.get("task_description", "")).strip()
    fields = {"task_description": task, "question": item["question"], "answer": answer}
    fields["new_context"] = item.get("context", "")
    return "judge_pair", fields


def judge_shots(job, stage: str) -> list[dict]:
    """The judge's examples, the same for every candidate and for the leaf's calibration (skill_freeform's
    judge_shots says why): seeds with their contexts as good ones; the prompt's off-topic questions set on those
    contexts (question judge) or seed questions with another seed's answer (pair judge) as bad ones."""
    seeds = _seeds(job)
    if stage == "judge_question":
        negatives = job.runner.prompts[stage].negatives
        return judge_examples(seeds, [{"context": s.get("context", ""), **n} for s, n in zip(seeds, negatives)])
    return judge_examples(seeds, mismatched(seeds))


def relevance_turns(job, item: dict, index: int) -> tuple[str, list[str]]:
    """The candidate's user turn (its context, then its question, as training shows it) and those of the seeds
    its answer is compared against (gate/relevance.py)."""

    def turn(x: dict) -> str:
        return f"{x.get('context', '')}\n\n{x['question']}"

    seeds = _seeds(job)
    others = [turn(seed) for seed in alternatives(seeds, item["question"], item["answer"], index)]
    return turn(item), [*others, NEUTRAL]


def _seeds(job) -> list[dict]:
    """The seeds shown as examples: those with a context, where the leaf has any."""
    return [item for item in job.prompt_items if item.get("context")] or job.prompt_items


async def candidate(job, index: int) -> Accepted:
    return await keeping(_candidate, job, index)


async def _candidate(job, index: int, sofar: dict) -> Accepted:
    run, task = job.runner, str(job.leaf.data.get("task_description", "")).strip()
    seeds = _seeds(job)
    examples = rotate(seeds, index, 2)
    reply = await run.call("context", {"task_description": task}, index, examples)
    context = sofar["context"] = parse.context(reply.text, reply.finish_reason, "context", job.shape)
    fields = {"task_description": task, "new_context": context}
    reply = await run.call("question", fields, index, examples)
    question = sofar["question"] = parse.question(reply.text, "question", reply.finish_reason, job.shape)
    fields["question"] = question
    own, others = question_turns(task, context)
    candidate = {"context": context, "question": question}
    q_relevance = await relevant(run, own, others, question, candidate, stage=QUESTION_STAGE)
    shots = judge_shots(job, "judge_question")
    q_score, q_reason, q_probability = await judge(
        run,
        "judge_question",
        fields,
        index,
        shots,
        label="question",
        min_score=MIN_SCORE,
        candidate={"context": context, "question": question},
    )
    reply = await run.call("answer", fields, index, examples)
    answer = sofar["answer"] = parse.answer(reply.text, reply.finish_reason, "answer")
    candidate = {"context": context, "question": question, "answer": answer}
    cheap_checks(question, answer, reply.finish_reason, candidate, max_words=job.shape.max_answer_words)
    item = {"context": context, "question": question, "answer": answer}
    own, others = relevance_turns(job, item, index)
    relevance = await relevant(run, own, others, answer, item)
    await check_consistency(run, "answer", fields, index, examples, answer, item)
    shots = judge_shots(job, "judge_pair")
    pair_score, pair_reason, pair_probability = await judge(
        run,
        "judge_pair",
        {**fields, "answer": answer},
        index,
        shots,
        label="pair",
        min_score=MIN_SCORE,
        candidate={"context": context, "question": question, "answer": answer},
    )
    reasons = {"question": q_reason, "pair": pair_reason}
    user = f"{context}\n\n{question}"
    return Accepted(
        index,
        question,
        answer,
        user,
        scores={"question": q_score, "pair": pair_score},
        reasons=reasons,
        probabilities=measured(
            question=q_probability, question_relevance=q_relevance, pair=pair_probability, relevance=relevance
        ),
        provenance={"seed_examples": [e["question"] for e in examples], "context": context},
    )
