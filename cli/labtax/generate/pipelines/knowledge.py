"""Knowledge: Q/A grounded in one document chunk -> judged for faithfulness, relevance, standing alone."""

from __future__ import annotations

from labtax.generate.pipelines import parse
from labtax.generate.pipelines.common import judge, judge_examples, mismatched, rotate
from labtax.generate.pipelines.outcome import Accepted, Reject

PROMPTS = "knowledge"
STAGES = ("qa", "judge_faithful", "judge_relevant", "judge_standalone")
MIN_SCORE = 2  # each judge scores 1-3; a sample must reach this on all three
JUDGES = (("judge_faithful", "faithful"), ("judge_relevant", "relevant"), ("judge_standalone", "standalone"))


def _judge_shots(job, stage: str, index: int) -> list[dict]:
    """Seeds as the good examples; wrong seed answers (faithfulness) or the prompt's negatives as bad ones."""
    seeds = job.prompt_items
    bad = (
        rotate(mismatched(seeds), index, 2) if stage == "judge_faithful" else list(job.runner.prompts[stage].negatives)
    )
    return judge_examples(rotate(seeds, index + 1, 2), bad)


async def candidate(job, index: int) -> Accepted:
    if not job.chunks:
        raise Reject("qa", "no_documents", job.documents_note or "the leaf's documents could not be read")
    run, domain = job.runner, str(job.leaf.data.get("domain", "")).strip()
    chunk = job.chunks[index % len(job.chunks)]
    reply = await run.call("qa", {"domain": domain, "chunk": chunk.text}, index, rotate(job.prompt_items, index, 2))
    question, answer = parse.question_answer(reply.text, reply.finish_reason, "qa")
    scores, reasons = {}, {}
    for stage, criterion in JUDGES:
        fields = {"domain": domain, "chunk": chunk.text, "question": question, "answer": answer}
        candidate = {"question": question, "answer": answer, "chunk": chunk.id}
        scores[criterion], reasons[criterion] = await judge(
            run,
            stage,
            fields,
            index,
            _judge_shots(job, stage, index),
            label=criterion,
            min_score=MIN_SCORE,
            candidate=candidate,
        )
    return Accepted(
        index,
        question,
        answer,
        question,
        scores=scores,
        reasons=reasons,
        provenance={"chunk": chunk.id, "chunk_hash": chunk.hash, "source": chunk.source},
    )
