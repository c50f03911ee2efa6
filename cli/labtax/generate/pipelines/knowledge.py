"""Knowledge: Q/A grounded in one document chunk -> judged for faithfulness, relevance, standing alone.

Every sample names the chunk it came from (repository, commit, path, byte range, page, heading, hash) and
keeps the chunk's text, so training can use it closed-book (the question alone) or as reading
comprehension (the chunk before the question), as LAB and InstructLab do.
"""

from __future__ import annotations

from labtax.generate import parse
from labtax.generate.gate.decision import Gate
from labtax.generate.gate.relevance import ALTERNATIVES
from labtax.generate.outcome import Accepted, Reject
from labtax.generate.pipelines.common import judge_examples, keeping, mismatched, rotate

PROMPTS = "knowledge"
STAGES: tuple[str, ...] = ("qa", "judge_faithful", "judge_relevant", "judge_standalone")
MIN_SCORE: int = 2  # each judge scores 1-3; a sample must reach this on all three
JUDGES = (("judge_faithful", "faithful"), ("judge_relevant", "relevant"), ("judge_standalone", "standalone"))


def judge_shots(job, stage: str) -> list[dict]:
    """Seeds as the good examples; wrong seed answers (faithfulness) or the prompt's negatives as bad ones. The
    same for every candidate of the leaf and for its calibration: the threshold is chosen on the prompt that
    decides, and the embedded teacher runs the shared start once (teacher/embedded.py prefix reuse)."""
    seeds = job.prompt_items
    bad = mismatched(seeds) if stage == "judge_faithful" else list(job.runner.prompts[stage].negatives)
    return judge_examples(seeds, bad)


def outline(leaf) -> str:
    """The leaf's document_outline on one line (InstructLab feeds it to the teacher with the document);
    the domain where a leaf has none, so the prompt never says "The document:" and nothing."""
    text = " ".join(str(leaf.data.get("document_outline") or "").split())
    return text or str(leaf.data.get("domain") or "").strip()


def document_provenance(chunk) -> dict:
    """Where the chunk is: always the same keys (None where a chunk has no page or heading)."""
    return {
        "repo": chunk.repo,
        "commit": chunk.commit,
        "path": chunk.source,
        "chunk": chunk.id,
        "chunk_hash": chunk.hash,
        "page": chunk.page,
        "heading": chunk.heading,
    }


def final_judge(job, item: dict, answer: str) -> tuple[str, dict]:
    fields = {
        "domain": str(job.leaf.data.get("domain", "")).strip(),
        "document_outline": outline(job.leaf),
        "chunk": item.get("context", ""),
        "question": item["question"],
        "answer": answer,
    }
    return "judge_faithful", fields


def relevance_turns(job, item: dict, index: int) -> tuple[str, list[str]]:
    """Grounding (gate/relevance.py): the candidate's chunk then its question, against other passages of the
    leaf (its document chunks, its seeds' contexts) then the same question. An answer the chunk does not
    support is about as likely after any passage; never compared with its own chunk, nor with a passage whose
    seed answer is the candidate's (that passage would explain it trivially)."""
    own, answer = item.get("context", ""), item["answer"].strip()
    source = {s.get("context", "") for s in job.prompt_items if s.get("answer", "").strip() == answer}
    pool = []
    for text in [chunk.text for chunk in job.chunks] + [s.get("context", "") for s in job.prompt_items]:
        if text and text != own and text not in source and text not in pool:
            pool.append(text)
    others = rotate(pool, index, ALTERNATIVES)
    return f"{own}\n\n{item['question']}", [f"{text}\n\n{item['question']}" for text in others] + [item["question"]]


async def candidate(job, index: int) -> Accepted:
    if not job.chunks:  # generate_leaf records this once per leaf; a guard, should a caller skip that
        raise Reject("documents", "no_documents", job.documents_note or "the leaf's documents could not be read")
    chunk = job.chunks[index % len(job.chunks)]
    try:
        return await keeping(_candidate, job, index, chunk)
    except Reject as reject:
        reject.chunk = chunk.id
        raise


async def vet_question(job, gate: Gate, candidate: dict, index: int) -> None:
    """Knowledge writes its question and answer in one reply: every check is the answer part's."""


async def vet_answer(job, gate: Gate, candidate: dict, index: int, finish_reason: str | None) -> None:
    """The gate's checks on a question and answer about a chunk (`candidate`'s `context` is the chunk's text,
    `chunk` its id): the cheap checks, grounding (gate/relevance.py), then the three judges."""
    chunk, text = str(candidate.get("chunk") or ""), str(candidate.get("context") or "")
    question, answer = candidate["question"], candidate["answer"]
    gate.chunk = chunk or gate.chunk
    item = {"question": question, "answer": answer, "chunk": chunk}
    gate.cheap_question(question, item, leaf=job.checks)
    # No `context`: an answer taken word for word from its chunk is an extractive answer, not a copied input.
    gate.cheap(question, answer, finish_reason, item, max_words=job.shape.max_answer_words, leaf=job.checks)
    own, others = relevance_turns(job, {"context": text, "question": question, "answer": answer}, index)
    await gate.relevant(own, others, answer, item)
    domain = str(job.leaf.data.get("domain", "")).strip()
    fields = {"domain": domain, "document_outline": outline(job.leaf), "chunk": text}
    for stage, criterion in JUDGES:
        await gate.judge(
            stage,
            {**fields, "question": question, "answer": answer},
            index,
            judge_shots(job, stage),
            label=criterion,
            min_score=MIN_SCORE,
            candidate=item,
        )


async def _candidate(job, index: int, chunk, sofar: dict) -> Accepted:
    run, domain = job.runner, str(job.leaf.data.get("domain", "")).strip()
    fields = {"domain": domain, "document_outline": outline(job.leaf), "chunk": chunk.text}
    examples = rotate(job.prompt_items, index, 2)
    reply = await run.call("qa", fields, index, examples)
    question, answer = parse.question_answer(reply.text, reply.finish_reason, "qa", job.shape)
    sofar.update(question=question, answer=answer)
    gate = Gate(run, chunk=chunk.id)
    candidate = {"question": question, "answer": answer, "context": chunk.text, "chunk": chunk.id}
    await vet_answer(job, gate, candidate, index, reply.finish_reason)
    verdict = gate.verdict
    return Accepted(
        index,
        question,
        answer,
        question,
        scores=verdict.scores,
        reasons=verdict.reasons,
        probabilities=verdict.probabilities,
        provenance={
            "seed_examples": [e["question"] for e in examples],
            "chunk": chunk.id,
            "document": document_provenance(chunk),
            "context": chunk.text,
        },
    )
