"""Grounded skills: new context -> question about it -> judge -> answer using it -> judge pair."""

from __future__ import annotations

from labtax.generate import parse
from labtax.generate.gate.decision import Gate
from labtax.generate.gate.relevance import NEUTRAL, QUESTION_STAGE, alternatives, question_turns
from labtax.generate.outcome import Accepted
from labtax.generate.pipelines.common import judge_examples, keeping, mismatched, rotate

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


async def vet_question(job, gate: Gate, candidate: dict, index: int) -> None:
    """The gate's question checks: likelier after the context and the leaf's task than after any request,
    then the question judge."""
    task = str(job.leaf.data.get("task_description", "")).strip()
    item = {"context": candidate.get("context", ""), "question": candidate["question"]}
    gate.cheap_question(item["question"], item, leaf=job.checks, context=item["context"])
    own, others = question_turns(task, item["context"])
    await gate.relevant(own, others, item["question"], item, stage=QUESTION_STAGE)
    fields = {"task_description": task, "new_context": item["context"], "question": item["question"]}
    shots = judge_shots(job, "judge_question")
    await gate.judge("judge_question", fields, index, shots, label="question", min_score=MIN_SCORE, candidate=item)


async def vet_answer(job, gate: Gate, candidate: dict, index: int, finish_reason: str | None) -> None:
    """The gate's answer checks: the cheap checks, relevance, self-consistency (the answer call asked again
    with the same examples), then the pair judge."""
    task = str(job.leaf.data.get("task_description", "")).strip()
    item = {"context": candidate.get("context", ""), "question": candidate["question"], "answer": candidate["answer"]}
    context, question, answer = item["context"], item["question"], item["answer"]
    gate.cheap(
        question,
        answer,
        finish_reason,
        item,
        max_words=job.shape.max_answer_words,
        context=context,
        leaf=job.checks,
    )
    own, others = relevance_turns(job, item, index)
    await gate.relevant(own, others, answer, item)
    fields = {"task_description": task, "new_context": context, "question": question}
    await gate.consistency("answer", fields, index, examples_for(job, index), answer, item)
    shots = judge_shots(job, "judge_pair")
    fields = {**fields, "answer": answer}
    await gate.judge("judge_pair", fields, index, shots, label="pair", min_score=MIN_SCORE, candidate=item)


def examples_for(job, index: int) -> list[dict]:
    """The seeds every stage of candidate `index` is shown (and its self-consistency resample)."""
    return rotate(_seeds(job), index, 2)


async def candidate(job, index: int) -> Accepted:
    return await keeping(_candidate, job, index)


async def _candidate(job, index: int, sofar: dict) -> Accepted:
    run, task = job.runner, str(job.leaf.data.get("task_description", "")).strip()
    examples = examples_for(job, index)
    reply = await run.call("context", {"task_description": task}, index, examples)
    context = sofar["context"] = parse.context(reply.text, reply.finish_reason, "context", job.shape)
    fields = {"task_description": task, "new_context": context}
    reply = await run.call("question", fields, index, examples)
    question = sofar["question"] = parse.question(reply.text, "question", reply.finish_reason, job.shape)
    fields["question"] = question
    gate = Gate(run)
    await vet_question(job, gate, {"context": context, "question": question}, index)  # a bad question costs no answer
    reply = await run.call("answer", fields, index, examples)
    answer = sofar["answer"] = parse.answer(reply.text, reply.finish_reason, "answer")
    item = {"context": context, "question": question, "answer": answer}
    await vet_answer(job, gate, item, index, reply.finish_reason)
    verdict = gate.verdict
    return Accepted(
        index,
        question,
        answer,
        f"{context}\n\n{question}",
        scores=verdict.scores,
        reasons=verdict.reasons,
        probabilities=verdict.probabilities,
        provenance={"seed_examples": [e["question"] for e in examples], "context": context},
    )
