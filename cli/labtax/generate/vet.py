"""`labtax vet`: generation's gate for data made anywhere (by hand, by another tool, an older run re-vetted).

Input rows, one JSON object a line: labtax sample records (schema/records/v1/sample.json), or minimal rows
`{"leaf": "<path to qna.yaml>", "messages": [...]}` with `context` for a grounded skill and `chunk` for
knowledge (the chunk's text, or the id of one of the leaf's document chunks). Each row's leaf is loaded from
the taxonomy and must pass lint (as generate requires); its job is the one generation builds (run.make_job:
seeds, held-out seeds, the leaf's format, its documents), calibrated as generation calibrates it, and the
row is decided by the same function generation uses (gate/decision.py `decide`).

Every row ends in exactly one place: accepted (a sample record), rejected (a rejection record: the failed
check's stage, reason and detail, with the probabilities measured before it), or not vetted, with a located
message `FILE:LINE: what, fix` (unknown leaf, invalid leaf, malformed row). summary.json counts them per
leaf and per reason.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from labtax.generate.calibrate import calibrate
from labtax.generate.gate.decision import decide
from labtax.generate.outcome import Accepted
from labtax.generate.run import LeafResult, Settings, make_job, rejected_record, sample_record
from labtax.records import jsonl, messages

if TYPE_CHECKING:
    from labtax.config import Config
    from labtax.generate.pipelines import LeafJob
    from labtax.records.types import Rejected, Sample
    from labtax.taxonomy.leaf import Leaf

UNKNOWN_LEAF, INVALID_LEAF, MALFORMED_ROW = "unknown_leaf", "invalid_leaf", "malformed_row"
ACCEPTED, REJECTED, NOT_VETTED, SUMMARY = "accepted.jsonl", "rejected.jsonl", "not_vetted.jsonl", "summary.json"


@dataclass
class Row:
    """One input row, located; `candidate` and `index` once it is understood."""

    file: str
    line: int
    value: dict
    leaf: str = ""
    candidate: dict = field(default_factory=dict)
    index: int = 0

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class NotVetted(Exception):
    reason: str  # unknown_leaf | invalid_leaf | malformed_row
    message: str  # what is wrong, and the fix


@dataclass
class Outcome:
    accepted: list[Sample] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    not_vetted: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


def read_rows(paths: list[Path]) -> tuple[list[Row], list[dict]]:
    """The object rows of the files, located; lines that are not JSON objects go straight to not vetted."""
    rows, bad = [], []
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, value in jsonl.rows(handle):
                if isinstance(value, jsonl.Damaged):
                    message = f"not JSON ({value.message}), fix: one JSON object a line"
                    bad.append(not_vetted_record(str(path), number, "", MALFORMED_ROW, message))
                elif not isinstance(value, dict):
                    message = f"a JSON {type(value).__name__}, not an object, fix: one JSON object a line"
                    bad.append(not_vetted_record(str(path), number, "", MALFORMED_ROW, message))
                else:
                    rows.append(Row(str(path), number, value))
    return rows, bad


def not_vetted_record(file: str, line: int, leaf: str, reason: str, message: str) -> dict:
    return {"file": file, "line": line, "leaf": leaf, "reason": reason, "message": f"{file}:{line}: {message}"}


def leaf_of(row: Row, root: Path) -> str:
    """The row's leaf path, checked to name a qna.yaml inside the taxonomy root."""
    leaf = row.value.get("leaf")
    if not isinstance(leaf, str) or not leaf.strip():
        raise NotVetted(MALFORMED_ROW, 'no "leaf", fix: add "leaf": the path of its qna.yaml under the taxonomy root')
    leaf = leaf.strip().removeprefix("./")
    if leaf.endswith("/") or not leaf.endswith("qna.yaml"):
        leaf = leaf.rstrip("/") + "/qna.yaml"
    where = (root / leaf).resolve()
    if ".." in Path(leaf).parts or Path(leaf).is_absolute() or not where.is_relative_to(root):
        raise NotVetted(UNKNOWN_LEAF, f"leaf {leaf!r} is outside the taxonomy, fix: a path relative to {root}")
    if not where.is_file():
        fix = "fix: the path of a qna.yaml relative to the taxonomy root (--root)"
        raise NotVetted(UNKNOWN_LEAF, f"no leaf {leaf} under {root}, {fix}")
    return leaf


def candidate_of(row: Row, leaf: Leaf, job: LeafJob) -> dict:
    """The question, answer and (grounded skills) context or (knowledge) chunk of a row, as the gate takes them."""
    value = row.value
    problem = messages.problem(value.get("messages"), need_answer=True)
    if problem is not None:
        raise NotVetted(
            MALFORMED_ROW,
            f"bad messages ({problem[0]}), fix: a list of {{role, content}} with a user turn and an assistant answer",
        )
    chat = value["messages"]
    last = max(n for n, m in enumerate(chat) if m["role"] == "assistant" and m["content"].strip())
    users = [m["content"] for m in chat[:last] if m["role"] == "user"]
    if not users or not users[-1].strip():
        raise NotVetted(MALFORMED_ROW, "no user turn before the answer, fix: the question as a user message")
    user, answer = users[-1], chat[last]["content"]
    given = value.get("provenance")
    provenance: dict = given if isinstance(given, dict) else {}
    if leaf.kind == "knowledge":
        return knowledge_candidate(value, provenance, user, answer, job)
    context = value.get("context", provenance.get("context", ""))
    if not isinstance(context, str):
        raise NotVetted(MALFORMED_ROW, '"context" is not text, fix: the text the question is about, or none')
    if job.pipeline.PROMPTS == "skill_grounded" and not context.strip():
        fix = 'fix: add "context", the text the question is about (as the leaf\'s seed examples have)'
        raise NotVetted(MALFORMED_ROW, f"the leaf is a grounded skill and the row has no context, {fix}")
    question = user.removeprefix(f"{context}\n\n") if context else user
    return {"question": question.strip(), "answer": answer, "context": context}


def knowledge_candidate(value: dict, provenance: dict, user: str, answer: str, job: LeafJob) -> dict:
    given = value.get("chunk", provenance.get("context", ""))
    chunk_id = str(provenance.get("chunk") or "")
    if not isinstance(given, str) or not given.strip():
        fix = "fix: the text of the document chunk the answer comes from, or the id of one of the leaf's chunks"
        raise NotVetted(MALFORMED_ROW, f'a knowledge row needs "chunk", {fix}')
    known = {chunk.id: chunk for chunk in job.chunks}
    if given in known:  # a document reference: one of the leaf's own chunks
        chunk_id, text = given, known[given].text
    else:
        text = given
    question = user.removeprefix(f"{text}\n\n")
    return {"question": question.strip(), "answer": answer, "context": text, "chunk": chunk_id}


def index_of(row: Row, position: int) -> int:
    """The candidate number the gate's calls are seeded and cached by: a record's own sample_index (re-vetting
    replays generation's judge calls), else the row's position among its leaf's rows."""
    provenance = row.value.get("provenance")
    index = provenance.get("sample_index") if isinstance(provenance, dict) else None
    return index if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < 500_000 else position


def valid_leaves(root: Path, paths: list[str], config: Config) -> tuple[dict[str, Leaf], dict[str, str]]:
    """The leaves that pass lint (errors only, as generate takes them), and why each other one does not."""
    from labtax.generate.plan import select_leaves
    from labtax.select import Selection

    chosen = select_leaves(Selection(root, sorted(paths), explicit=True), config)
    leaves = {leaf.path: leaf for leaf in chosen.leaves}
    why = {
        skipped["leaf"]: f"leaf {skipped['leaf']} has lint errors ({'; '.join(skipped['errors'][:3])}), "
        f"fix: `labtax lint {skipped['leaf']}` shows them"
        for skipped in chosen.skipped
    }
    for path in paths:
        if path not in leaves and path not in why:
            why[path] = f"{path} is not a leaf labtax can load, fix: `labtax lint {path}` says why"
    return leaves, why


async def vet(
    rows: list[Row],
    bad: list[dict],
    root: Path,
    config: Config,
    teacher,
    settings: Settings,
    cache,
    *,
    judge=None,
) -> Outcome:
    """Every row to exactly one of accepted, rejected and not vetted (`bad`: rows already found malformed)."""
    from labtax.changes.git import head_commit

    out = Outcome(not_vetted=list(bad))
    by_leaf: dict[str, list[Row]] = {}
    for row in rows:
        try:
            row.leaf = leaf_of(row, root)
        except NotVetted as problem:
            out.not_vetted.append(
                not_vetted_record(row.file, row.line, str(row.value.get("leaf", "")), *astuple(problem))
            )
            continue
        by_leaf.setdefault(row.leaf, []).append(row)
    leaves, invalid = valid_leaves(root, list(by_leaf), config)
    for path, message in invalid.items():
        out.not_vetted += [not_vetted_record(r.file, r.line, path, INVALID_LEAF, message) for r in by_leaf.pop(path)]
    commit = head_commit(root) if by_leaf else None
    results: dict[str, tuple[LeafResult, list[Row]]] = {}

    async def one(path: str, leaf_rows: list[Row]) -> None:
        leaf = leaves[path]
        job = make_job(leaf, teacher, cache, settings, judge=judge)
        result = LeafResult(
            leaf, job.pipeline.__name__.rsplit(".", 1)[-1], job.runner.prompts.tag, stats=job.runner.stats
        )
        if settings.calibrate:
            result.gate = await calibrate(job, job.pipeline.MIN_SCORE)
        understood = []
        for position, row in enumerate(leaf_rows):
            try:
                row.candidate, row.index = candidate_of(row, leaf, job), index_of(row, position)
            except NotVetted as problem:
                out.not_vetted.append(not_vetted_record(row.file, row.line, path, *astuple(problem)))
                continue
            understood.append(row)
        verdicts = await asyncio.gather(*(decide(job, row.candidate, row.index) for row in understood))
        for row, verdict in zip(understood, verdicts):
            result.candidates += 1
            reject = verdict.reject
            if reject is None:
                result.accepted.append((row, accepted_of(row, verdict)))
                continue
            measured = ", ".join(f"{name} P {p:.3f}" for name, p in verdict.probabilities.items())
            if measured:
                reject.detail = f"{reject.detail} (measured: {measured})"
            result.rejected.append((row, reject))
        results[path] = (result, leaf_rows)

    await asyncio.gather(*(one(path, leaf_rows) for path, leaf_rows in by_leaf.items()))
    for path in sorted(results):
        result, _ = results[path]
        for row, accepted in result.accepted:
            out.accepted.append(
                sample_of(row, sample_record(result, accepted, teacher, commit, judge), judge or teacher)
            )
        out.rejected += [rejected_record(result, row.index, reject) for row, reject in result.rejected]
    out.summary = summary_of(out, {path: r for path, (r, _) in results.items()}, len(rows) + len(bad))
    return out


def astuple(problem: NotVetted) -> tuple[str, str]:
    return problem.reason, problem.message


def accepted_of(row: Row, verdict) -> Accepted:
    candidate = row.candidate
    context = candidate.get("context", "")
    user = f"{context}\n\n{candidate['question']}" if context and "chunk" not in candidate else candidate["question"]
    provenance = {"context": context, "chunk": candidate.get("chunk", "")}
    return Accepted(
        row.index,
        candidate["question"],
        candidate["answer"],
        user,
        scores=verdict.scores,
        reasons=verdict.reasons,
        probabilities=verdict.probabilities,
        provenance=provenance,
    )


def sample_of(row: Row, made: Sample, judge) -> Sample:
    """A sample record re-vetted keeps its id, messages and provenance (its judge now this one); a minimal row
    becomes a sample record as generation writes one (system, user, assistant)."""
    value = row.value
    provenance = value.get("provenance")
    if not isinstance(provenance, dict) or not set(provenance) >= set(made["provenance"]):
        return made
    made["messages"] = [{"role": m["role"], "content": m["content"]} for m in value["messages"]]
    made["provenance"] = {**provenance, "judge": judge.name, "judge_model": judge.model}
    if isinstance(value.get("id"), str) and value["id"]:
        made["id"] = value["id"]
    return made


def summary_of(out: Outcome, results: dict[str, LeafResult], rows: int) -> dict:
    leaves: dict[str, dict] = {}
    for path, result in sorted(results.items()):
        leaves[path] = {
            "kind": result.leaf.kind,
            "pipeline": result.pipeline,
            "accepted": len(result.accepted),
            "rejected": dict(Counter(reject.reason for _, reject in result.rejected)),
            "teacher_calls": result.stats.teacher_calls if result.stats else 0,
            "cached_calls": result.stats.cached_calls if result.stats else 0,
            "gate": result.gate.as_dict(),
        }
    for record in out.not_vetted:
        if record["leaf"] in leaves:
            counts = leaves[record["leaf"]].setdefault("not_vetted", {})
            counts[record["reason"]] = counts.get(record["reason"], 0) + 1
    return {
        "rows": rows,
        "accepted": len(out.accepted),
        "rejected": len(out.rejected),
        "not_vetted": len(out.not_vetted),
        "rejected_by_reason": dict(sorted(Counter(r["reason"] for r in out.rejected).items())),
        "not_vetted_by_reason": dict(sorted(Counter(r["reason"] for r in out.not_vetted).items())),
        "leaves": leaves,
    }


def write(output: Path, out: Outcome, run: dict) -> None:
    """accepted.jsonl, rejected.jsonl, not_vetted.jsonl and summary.json in `output`."""
    from labtax.fileio import write_json_atomic, write_text_atomic

    output.mkdir(parents=True, exist_ok=True)
    write_text_atomic(output / ACCEPTED, jsonl.dumps(out.accepted))
    write_text_atomic(output / REJECTED, jsonl.dumps(out.rejected))
    write_text_atomic(output / NOT_VETTED, jsonl.dumps(out.not_vetted))
    write_json_atomic(output / SUMMARY, {"run": run, **out.summary})
