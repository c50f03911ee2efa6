"""Synthetic data generation over selected leaves: candidates -> accepted or rejected -> artifacts.

Per leaf, candidates are numbered; round after round, exactly as many new candidates are started as
accepted samples are still missing, until the target N is met or the attempt budget is spent. Numbering
plus the call cache make every run deterministic and resumable: a re-run replays the same candidates from
the cache, so it makes zero teacher calls for what was already done and never duplicates a sample.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from labtax import documents
from labtax.changes.git import head_commit
from labtax.generate import seeds
from labtax.generate.cache import CallCache
from labtax.generate.calibrate import GateReport, calibrate
from labtax.generate.outcome import Accepted, Reject
from labtax.generate.pipelines import LeafJob, pipeline_for
from labtax.generate.pipelines.dedup import NearDuplicateFilter
from labtax.generate.pipelines.prompts import load as load_prompts
from labtax.generate.pipelines.runner import CallStats, StageRunner
from labtax.records.layout import Layout, leaf_folder
from labtax.records.types import Candidate, Criterion, HeldOut, JudgeRecord, LeafSummary, Rejected, RunSummary, Sample
from labtax.taxonomy.leaf import Leaf
from labtax.teacher.base import Scorer

SYSTEM_PROMPT = "You are a helpful, accurate assistant."
BUCKETS = ("knowledge", "foundational", "compositional")


@dataclass
class Settings:
    num_samples: int = 5
    max_attempts: int = 4  # candidates per requested sample, at most
    dedup_threshold: float = 0.7
    chunk_tokens: int = 350
    offline: bool = False  # knowledge documents only from the cache, never fetched
    calibrate: bool = True  # per leaf: can the gate tell the leaf's held-out seeds from corrupted copies?
    keep_unvetted: bool = False  # samples the gate could not vet go to the training files too (else to review/)


@dataclass
class LeafResult:
    leaf: Leaf
    pipeline: str
    prompts: str
    accepted: list = field(default_factory=list)
    rejected: list = field(default_factory=list)
    candidates: int = 0
    seconds: float = 0.0
    stats: CallStats | None = None
    heldout: list = field(default_factory=list)
    note: str | None = None
    gate: GateReport = field(default_factory=GateReport)


def leaf_output_dir(output: Path, leaf) -> Path:
    return Path(output) / leaf_folder(leaf.path)


def make_job(leaf, teacher, cache: CallCache, settings: Settings, progress=None, judge=None) -> LeafJob:
    """`judge` answers the judge stages (and the calibration); None: the teacher does."""
    pipeline = pipeline_for(leaf)
    prompt_items, heldout = seeds.split(leaf)
    runner = StageRunner(teacher, cache, load_prompts(pipeline.PROMPTS), progress, judge=judge)
    job = LeafJob(leaf, pipeline, runner, prompt_items, heldout, shape=seeds.LeafShape.of(seeds.qa_items(leaf)))
    runner.max_tokens = job.shape.max_tokens({name: stage.max_tokens for name, stage in runner.prompts.stages.items()})
    if leaf.kind == "knowledge":
        job.chunks, job.documents_note = documents.chunks_for(
            leaf.root, leaf.data.get("document"), settings.chunk_tokens, offline=settings.offline
        )
    return job


async def gather_or_cancel(*awaitables):
    """asyncio.gather, except that the first failure cancels the others before it propagates: an unreachable
    endpoint (EndpointUnusable) ends the run now, not after every call in flight has failed on its own."""
    tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    try:
        return await asyncio.gather(*tasks)
    except Exception:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
        raise


async def _run_candidate(job: LeafJob, index: int):
    try:
        return await job.pipeline.candidate(job, index)
    except Reject as reject:
        return reject


async def generate_leaf(job: LeafJob, settings: Settings) -> LeafResult:
    started = time.monotonic()
    leaf = job.leaf
    result = LeafResult(
        leaf,
        job.pipeline.__name__.rsplit(".", 1)[-1],
        job.runner.prompts.tag,
        stats=job.runner.stats,
        heldout=job.heldout,
    )
    if leaf.kind == "knowledge" and not job.chunks:
        return _no_documents(job, result, started)
    if settings.calibrate:
        result.gate = await calibrate(job, job.pipeline.MIN_SCORE)
    # Held-out seeds too (no leakage); what makes a sample distinct is its question and the text it is about.
    references = [(it["question"], it.get("context", "")) for it in seeds.qa_items(leaf)]
    dedup = NearDuplicateFilter(references, settings.dedup_threshold)
    budget = settings.num_samples * settings.max_attempts
    next_index = 0
    while len(result.accepted) < settings.num_samples and next_index < budget:
        batch = range(next_index, min(budget, next_index + settings.num_samples - len(result.accepted)))
        next_index = batch.stop
        outcomes = await gather_or_cancel(*(_run_candidate(job, i) for i in batch))
        for index, outcome in zip(batch, outcomes):
            result.candidates += 1
            if isinstance(outcome, Reject):
                result.rejected.append((index, outcome))
                continue
            about = str(outcome.provenance.get("context") or "")  # a grounded context, a knowledge chunk's text
            near = dedup.match(outcome.question, about)
            if near:
                candidate = {"question": outcome.question, "answer": outcome.answer}
                if leaf.kind != "knowledge":  # a knowledge candidate's text is its chunk, named by `chunk`
                    candidate["context"] = about
                reject = Reject("dedup", "duplicate", near.describe(), candidate, outcome.provenance.get("chunk"))
                result.rejected.append((index, reject))
                continue
            dedup.add(outcome.question, about)
            result.accepted.append(outcome)
    if len(result.accepted) < settings.num_samples:
        result.note = (
            f"accepted {len(result.accepted)} of {settings.num_samples} requested after {result.candidates} candidates "
            f"(the attempt budget is {settings.max_attempts} per sample; raise --max-attempts or use a stronger teacher)"
        )
    if job.documents_note:  # some documents were read, some not: say which were left out
        result.note = "; ".join(filter(None, [result.note, f"documents partly read: {job.documents_note}"]))
    result.seconds = time.monotonic() - started
    return result


def _no_documents(job: LeafJob, result: LeafResult, started: float) -> LeafResult:
    """A knowledge leaf whose documents cannot be had: one rejection saying why, and no teacher call (every
    candidate would fail the same way, and a teacher cannot write about a document it is not shown)."""
    reason = job.documents_note or "the leaf's documents could not be read"
    result.candidates = 1
    result.rejected.append((0, Reject("documents", "no_documents", reason)))
    result.note = f"no documents (no teacher calls made): {reason}; `labtax lint --check-documents` shows the line"
    result.seconds = time.monotonic() - started
    return result


def sample_record(result: LeafResult, accepted: Accepted, teacher, commit: str | None, judge=None) -> Sample:
    leaf = result.leaf
    extra = accepted.provenance
    document: dict = extra["document"] if isinstance(extra.get("document"), dict) else {}
    sample_id = hashlib.sha256(f"{leaf.path}\0{accepted.index}\0{accepted.question}".encode()).hexdigest()[:16]
    return {
        "id": sample_id,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": accepted.user},
            {"role": "assistant", "content": accepted.answer},
        ],
        "leaf": leaf.path,
        "kind": leaf.kind,
        "provenance": {
            "leaf": leaf.path,
            "leaf_hash": leaf.content_hash[:16],
            "seed_hash": seeds.seed_hash(seeds.split(leaf)[0]),
            "sample_index": accepted.index,
            "teacher": teacher.name,
            "teacher_model": teacher.model,
            "judge": (judge or teacher).name,  # who answered the judge stages: the teacher unless a separate judge
            "judge_model": (judge or teacher).model,
            "pipeline": result.pipeline,
            "prompt_version": result.prompts,
            "git_commit": commit or "",
            # The same keys and types in every pipeline ("" / 0 where a pipeline has nothing, never null: a column
            # that is all null in one file cannot be cast to text in another), so every row of every file has one
            # shape and `datasets` loads the files together (schema/records/v1/sample.json).
            "seed_examples": [str(q) for q in extra.get("seed_examples", [])],
            "context": str(extra.get("context") or ""),
            "chunk": str(extra.get("chunk") or ""),
            "document": {key: _text_or_zero(key, document.get(key)) for key in DOCUMENT_KEYS},
        },
        "judge": judge_record(accepted, result.gate),
    }


DOCUMENT_KEYS = ("repo", "commit", "path", "chunk", "chunk_hash", "page", "heading")


def _text_or_zero(key: str, value: object) -> str | int:
    if key == "page":  # 1-based PDF page; 0 = not from a PDF page
        return value if isinstance(value, int) and not isinstance(value, bool) else 0
    return "" if value is None else str(value)


MEASURED = {
    "question_relevance": "likelier after the leaf's task than after any request: P {:.2f}",
    "relevance": "likelier after its own question than after the leaf's others: P {:.2f}",
}


def judge_record(accepted: Accepted, gate: GateReport) -> JudgeRecord:
    """Every judge verdict as a list of the same fields (criteria differ by pipeline, the shape does not)."""
    criteria: list[Criterion] = [
        {
            "name": str(name),
            "score": int(score),
            "probability": accepted.probabilities.get(name),
            "reason": str(accepted.reasons.get(name, "")),
        }
        for name, score in accepted.scores.items()
    ]
    # Measured, not scored (gate/relevance.py): score 0, the probability says it.
    criteria += [
        {
            "name": str(name),
            "score": 0,
            "probability": probability,
            "reason": MEASURED.get(name, "{:.2f}").format(probability),
        }
        for name, probability in accepted.probabilities.items()
        if name not in accepted.scores
    ]
    known = [p for c in criteria if (p := c["probability"]) is not None]
    vetted = {True: "yes", False: "no", None: "unknown"}[gate.separates]  # text, never null: one type per column
    return {"criteria": criteria, "probability": min(known) if known else None, "vetted": vetted}


CANDIDATE_KEYS = ("question", "answer", "context")


def rejected_record(result: LeafResult, index: int, reject: Reject) -> Rejected:
    """A rejection; `candidate` is always the same object: the fields the candidate had when it was rejected, and
    the reply that could not be used, if one, in `raw`."""
    raw = reject.reply or (reject.candidate if isinstance(reject.candidate, str) else "")
    fields = reject.candidate if isinstance(reject.candidate, dict) else {}
    text = {key: value if isinstance(value := fields.get(key), str) else "" for key in CANDIDATE_KEYS}
    candidate: Candidate = {
        "question": text["question"],
        "answer": text["answer"],
        "context": text["context"],
        "raw": raw,
    }
    return {
        "leaf": result.leaf.path,
        "stage": reject.stage,
        "reason": reject.reason,
        "candidate": candidate,
        "detail": str(reject.detail),
        "sample_index": index,
        "chunk": reject.chunk or "",  # the document chunk a knowledge candidate was about; "" otherwise
    }


def heldout_record(leaf, item: dict) -> HeldOut:
    user = (
        f"{item['context']}\n\n{item['question']}"
        if item.get("context") and leaf.kind != "knowledge"
        else item["question"]
    )
    return {
        "leaf": leaf.path,
        "kind": leaf.kind,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": user},
            {"role": "assistant", "content": item["answer"]},
        ],
    }


def leaf_summary(result: LeafResult, requested: int) -> LeafSummary:
    stats = result.stats or CallStats()
    summary: LeafSummary = {
        "kind": result.leaf.kind,
        "pipeline": result.pipeline,
        "prompt_version": result.prompts,
        "requested": requested,
        "generated": result.candidates,
        "accepted": len(result.accepted),
        "rejected": dict(Counter(reject.reason for _, reject in result.rejected)),
        "rejected_by_stage": dict(Counter(reject.stage for _, reject in result.rejected)),
        "teacher_calls": stats.teacher_calls,
        "cached_calls": stats.cached_calls,
        "tokens": stats.tokens,
        "seconds": round(result.seconds, 3),
        "note": result.note,  # the generator's own: the gate's verdict is `gate` (records.types.GateVerdict)
        "gate": result.gate.as_dict(),
    }
    if stats.shortened:  # only then: the summaries of runs whose prompts all fit stay as they were
        summary["prompts_shortened"] = stats.shortened
    return summary


def judge_logprobs(results: list[LeafResult]) -> bool | None:
    """Whether the run's judge replies came with log-probabilities (verdicts as probabilities, calibrated
    thresholds): false when none did (an endpoint without them, e.g. llama.cpp without --logits_all: the
    sampled digit decided), null when the run had no judge reply. From the replies, not the endpoint: a run
    replayed from the cache records what the run that made the calls did."""
    stats = [r.stats for r in results if r.stats is not None and r.stats.judged]
    return any(s.judged_with_logprobs for s in stats) if stats else None


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


async def run_generation(
    leaves: list,
    teacher,
    output: Path,
    settings: Settings,
    *,
    progress=None,
    on_leaf_done=None,
    skipped: list | None = None,
    judge=None,
    cache: CallCache | None = None,
) -> RunSummary:
    """Generate for every leaf concurrently (the teacher bounds concurrency); write artifacts; return the summary.

    `judge` answers every judge stage and the gate's calibration (a stronger model vetting a cheaper
    teacher); None: the teacher judges its own output. `cache`: the call cache to use instead of the one
    under `output` (a Ray worker keeps one for its life rather than listing the shared cache for every leaf).

    Holds the output folder's lock throughout (a second run on it refuses with artifacts.OutputBusy). The
    summary and bucket files cover every leaf folder under `output`, earlier runs' too; `run.leaves`
    lists the leaves this run generated.
    """
    from labtax.generate import artifacts

    started, wall = now_iso(), time.monotonic()
    output = Path(output)
    with artifacts.output_lock(output, started):
        cache = cache if cache is not None else CallCache(Layout(output).calls)
        commit = head_commit(leaves[0].root) if leaves else None
        jobs = [make_job(leaf, teacher, cache, settings, progress, judge) for leaf in leaves]

        async def one(job):
            result = await generate_leaf(job, settings)
            samples = [sample_record(result, a, teacher, commit, judge) for a in result.accepted]
            rejected = [rejected_record(result, i, r) for i, r in result.rejected]
            record = {
                "leaf": job.leaf.path,
                "summary": {**leaf_summary(result, settings.num_samples), "generated_at": started},
                "heldout": [heldout_record(job.leaf, item) for item in result.heldout],
            }
            # In a thread: a big leaf's writes would otherwise stall the calls of the leaves still running.
            await asyncio.to_thread(artifacts.write_leaf, leaf_output_dir(output, job.leaf), samples, rejected, record)
            if on_leaf_done:
                on_leaf_done(result)
            return result

        done = await gather_or_cancel(*(one(job) for job in jobs))
        run = {
            "teacher": teacher.name,
            "model": teacher.model,
            "judge": (judge or teacher).name,
            "judge_model": (judge or teacher).model,
            "judge_logprobs": judge_logprobs(done),
            # whether the judge could score given replies, so the gate's likelihood checks ran (gate/relevance.py)
            "judge_scores": isinstance(judge or teacher, Scorer),
            "commit": commit,
            "started": started,
            "seconds": round(time.monotonic() - wall, 3),
            "num_samples": settings.num_samples,
            "max_attempts": settings.max_attempts,
            "dedup_threshold": settings.dedup_threshold,
            "keep_unvetted": settings.keep_unvetted,
            "pipeline_versions": sorted({r.prompts for r in done}),
            "leaves": sorted(r.leaf.path for r in done),
            "skipped": skipped or [],  # selected leaves not generated (lint errors), with the errors
        }
        return artifacts.write_run(output, BUCKETS, run)
