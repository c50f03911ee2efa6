"""Knowledge: Q/A grounded in one document chunk -> judged for faithfulness, relevance, standing alone."""

from __future__ import annotations

from labtax.pipelines import parse
from labtax.pipelines.common import rotate
from labtax.pipelines.outcome import Accepted, Reject

PROMPTS = "knowledge"
STAGES = ("qa", "judge_faithful", "judge_relevant", "judge_standalone")
JUDGES = (("judge_faithful", "faithful"), ("judge_relevant", "relevant"), ("judge_standalone", "standalone"))


async def candidate(job, index: int) -> Accepted:
    if not job.chunks:
        raise Reject("qa", "no_documents", job.documents_note or "the leaf's documents could not be read")
    run, domain = job.runner, str(job.leaf.data.get("domain", "")).strip()
    chunk = job.chunks[index % len(job.chunks)]
    reply = await run.call("qa", {"domain": domain, "chunk": chunk.text}, index, rotate(job.prompt_items, index, 2))
    question, answer = parse.question_answer(reply.text, reply.finish_reason, "qa")
    scores, reasons = {}, {}
    for stage, criterion in JUDGES:
        verdict = await run.call(stage, {"domain": domain, "chunk": chunk.text, "question": question, "answer": answer}, index)
        scores[criterion] = parse.yes_no(verdict.text, stage)
        reasons[criterion] = verdict.text.strip()[:300]
        if not scores[criterion]:
            raise Reject(stage, "judge_score", f"judged not {criterion}", {"question": question, "answer": answer, "chunk": chunk.id})
    return Accepted(index, question, answer, question, scores=scores, reasons=reasons, provenance={"chunk": chunk.id, "chunk_hash": chunk.hash, "source": chunk.source})
