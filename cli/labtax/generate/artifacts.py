"""Writing generation results: per-leaf samples, buckets, phase files, rejections, held-out seeds, summary.

Every file is written atomically; per-leaf files are written as soon as the leaf is done. The per-leaf
folders are the source of truth: the run-level files are rebuilt at the end of every run from every leaf
folder present under --output (this run's leaves and earlier runs' alike, sorted by leaf path), so
generating leaf B after leaf A never drops A from what `labtax train` reads. To drop a leaf, delete its
folder under --output.

The run-level layout keeps training data apart from everything else, so `load_dataset("json",
data_files="generated/*.jsonl")` picks up training rows only:

    knowledge.jsonl, foundational.jsonl, compositional.jsonl, knowledge_with_context.jsonl   training data
    phases/knowledge_recipe.yaml, phases/knowledge_train_msgs.jsonl                        LAB phase 1
    phases/skills_recipe.yaml, phases/skills_train_msgs.jsonl                              LAB phase 2 + replay
    eval/heldout.jsonl       held-out seeds (never shown to the teacher, never trained on)
    review/rejected.jsonl    rejected candidates, with stage and reason
    review/unvetted.jsonl    accepted samples the gate could not vet, with why (`held_back`); in the training
                             files instead only with --keep-unvetted (run.keep_unvetted)
    summary.json

An output folder written by an older labtax held rejected.jsonl and heldout.jsonl at the top level, where
that glob would train on them: write_run removes those two files (only they; the data moved to review/ and
eval/), so the next generate or merge into the folder leaves the glob clean.

Knowledge samples are written twice: closed-book in knowledge.jsonl (the question alone, as training on
knowledge asks), and as reading comprehension in knowledge_with_context.jsonl (the same record, the
document chunk it was generated from placed before the question in the user turn), as LAB and InstructLab
train on both. The second file is rebuilt from the per-leaf folders like the buckets; a knowledge sample
without its chunk text (written by an older labtax) has no row there. The phase files and their recipes
(labtax/mix/phases.py) are mixed from these files, seeded, so they too are byte-identical for identical
leaf files.

One `generate` at a time per output folder: run_generation holds an exclusive lock (fcntl.flock on
.labtax-generate.lock) from start to end; a second run refuses at once, naming the one that holds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections import Counter
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from labtax.errors import LabtaxError
from labtax.fileio import write_json_atomic, write_text_atomic
from labtax.mix import phases
from labtax.records import jsonl as jsonl_file
from labtax.records.layout import LEAF_FILE, LEAF_RECORD, LEGACY, REJECTED, SAMPLES, Layout
from labtax.records.types import (
    LeafSummary,
    Rejected,
    RunInfo,
    RunSummary,
    Sample,
    Totals,
    held_back_reason,
    vetted,
)
from labtax.taxonomy.kinds import TREES, kind_of

KINDS = tuple(TREES.values())
COUNTS = ("requested", "generated", "accepted", "teacher_calls", "cached_calls", "tokens")


class OutputBusy(LabtaxError):
    """Another `labtax generate` holds the output folder."""


jsonl = jsonl_file.dumps


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@contextmanager
def output_lock(output: Path, started: str):
    """Hold the output folder for one run. Refuses (OutputBusy, exit 2) rather than waits: a CI job or a
    second terminal learns at once which run holds it, instead of hanging behind an hour-long run. The
    kernel drops the lock when the holder exits, even on kill -9, so a stale lock file never blocks."""
    import fcntl

    output = Path(output)
    path = Layout(output).lock
    try:
        output.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o666)
    except OSError as exc:
        raise LabtaxError(
            f"cannot use --output {output}: {exc.strerror or exc} ({exc.filename or path}); choose a folder you can write to"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "a run that is just starting"
            raise OutputBusy(
                f"--output {output} is in use by another `labtax generate` ({holder}); wait for it to finish, or pass another --output"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n".encode())
        yield
    finally:
        os.close(fd)  # releases the lock


def write_leaf(leaf_dir: Path, samples: Sequence[Sample], rejected: Sequence[Rejected], record: dict) -> None:
    """The leaf's files; leaf.json last, with a hash of samples.jsonl, so a run killed between the writes
    leaves a mismatch that the rebuild notices instead of trusting stale counts."""
    text = jsonl(samples)
    write_text_atomic(leaf_dir / SAMPLES, text)
    write_text_atomic(leaf_dir / REJECTED, jsonl(rejected))
    write_json_atomic(leaf_dir / LEAF_RECORD, {**record, "samples_sha256": digest(text)})


@dataclass
class LeafOutput:
    path: str  # the leaf path (taxonomy-relative qna.yaml); its folder is its place under --output
    kind: str
    samples: list[dict]
    rejected: list[dict]
    summary: LeafSummary
    heldout: list[dict] = field(default_factory=list)


def leaf_folders(output: Path):
    """Every folder under `output` holding a samples.jsonl, skipping hidden folders (the call cache)."""
    for folder, dirs, files in os.walk(output, onerror=_raise):  # an unreadable folder is an error, not a dropped leaf
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if SAMPLES in files and Path(folder) != Path(output):
            yield Path(folder)


def _raise(exc: OSError) -> None:
    raise exc


def read_leaf(output: Path, folder: Path) -> LeafOutput:
    rel = folder.relative_to(output).as_posix()
    path = f"{rel}/{LEAF_FILE}"
    text = (folder / SAMPLES).read_text(encoding="utf-8")
    samples, rejected = _parse_jsonl(folder / SAMPLES, text), _parse_jsonl(folder / REJECTED)
    try:
        record = json.loads((folder / LEAF_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = None
    if (
        isinstance(record, dict)
        and isinstance(record.get("summary"), dict)
        and record.get("samples_sha256") == digest(text)
    ):
        leaf = record.get("leaf")
        path = leaf if isinstance(leaf, str) and leaf.rsplit("/", 1)[0] == rel else path
        heldout = (
            [h for h in record["heldout"] if isinstance(h, dict)] if isinstance(record.get("heldout"), list) else []
        )
        kind = record["summary"].get("kind")
        return LeafOutput(path, kind if kind in KINDS else kind_of(path), samples, rejected, record["summary"], heldout)
    kind = kind_of(path)
    summary: LeafSummary = {  # COUNTS' order, as every leaf summary has it
        "kind": kind,
        "requested": len(samples),
        "generated": len(samples) + len(rejected),
        "accepted": len(samples),
        "teacher_calls": 0,
        "cached_calls": 0,
        "tokens": 0,
        "rejected": dict(Counter(str(r.get("reason")) for r in rejected)),
        "rejected_by_stage": dict(Counter(str(r.get("stage")) for r in rejected)),
        "seconds": 0.0,
        "note": f"{LEAF_RECORD} is missing or does not match {SAMPLES} (an older labtax or an interrupted run): counts rebuilt from the files, held-out seeds unknown; re-run generate on this leaf (its calls are cached)",
    }
    return LeafOutput(path, kind, samples, rejected, summary)


def _parse_jsonl(path: Path, text: str | None = None) -> list[dict]:
    """The records of a per-leaf .jsonl (none if it is missing); a damaged line is an error naming the fix,
    never a sample silently dropped from the buckets."""
    if text is None:
        if not path.is_file():
            return []
        text = path.read_text(encoding="utf-8")
    records = []
    for number, record in jsonl_file.rows(text.splitlines()):
        if not isinstance(record, dict):
            raise LabtaxError(
                f"{path}:{number} is not a JSON object (a damaged file?); delete the folder {path.parent} and re-run generate on that leaf (its calls are cached)"
            )
        records.append(record)
    return records


def write_run(output: Path, buckets: tuple[str, ...], run: dict) -> RunSummary:
    """Rebuild the bucket files, the phase files, review/rejected.jsonl, eval/heldout.jsonl and summary.json
    from every leaf folder under `output`, in leaf-path order (byte-identical for identical leaf files), and
    remove an older labtax's top-level rejected.jsonl and heldout.jsonl; return the summary."""
    output = Path(output)
    layout = Layout(output)
    try:
        leaves = sorted((read_leaf(output, folder) for folder in leaf_folders(output)), key=lambda leaf: leaf.path)
    except (OSError, UnicodeDecodeError) as exc:
        raise LabtaxError(
            f"cannot read the earlier output under --output {output}: {exc}; delete the damaged leaf folder or pass another --output"
        ) from None
    # Precision first: a sample the gate could not vet is not training data unless the run says so
    # (--keep-unvetted); it waits in review/unvetted.jsonl with why.
    keep_unvetted = run.get("keep_unvetted") is True
    trainable: dict[str, list[dict]] = {leaf.path: [] for leaf in leaves}
    held: dict[str, list[dict]] = {leaf.path: [] for leaf in leaves}
    for leaf in leaves:
        reason = held_back_reason(leaf.summary)
        for sample in leaf.samples:
            if keep_unvetted or vetted(sample):
                trainable[leaf.path].append(sample)
            else:
                held[leaf.path].append({**sample, "held_back": reason})
    grouped: dict[str, list[dict]] = {bucket: [] for bucket in buckets}
    for leaf in leaves:
        grouped.setdefault(leaf.kind, []).extend(trainable[leaf.path])
    for bucket, records in grouped.items():
        write_text_atomic(layout.bucket(bucket), jsonl(records))
    knowledge = [s for leaf in leaves if leaf.kind == "knowledge" for s in trainable[leaf.path]]
    write_text_atomic(layout.with_context, jsonl(list(filter(None, map(with_context, knowledge)))))
    phases.write_phases(output)
    write_text_atomic(layout.rejected, jsonl([r for leaf in leaves for r in leaf.rejected]))
    write_text_atomic(layout.unvetted, jsonl([s for leaf in leaves for s in held[leaf.path]]))
    write_text_atomic(layout.heldout, jsonl([h for leaf in leaves for h in leaf.heldout]))
    for name in LEGACY:
        stale = output / name
        if stale.is_symlink() or stale.is_file():  # a link is removed, never followed
            stale.unlink()
    per_leaf: dict[str, LeafSummary] = {
        leaf.path: {**leaf.summary, "held_back": len(held[leaf.path])} for leaf in leaves
    }
    totals = cast(Totals, {key: sum(_count(leaf.get(key)) for leaf in per_leaf.values()) for key in COUNTS})
    totals["held_back"] = sum(len(rows) for rows in held.values())
    totals["rejected"] = dict(
        sum(
            (
                Counter({str(k): _count(v) for k, v in _as_dict(leaf.get("rejected")).items()})
                for leaf in per_leaf.values()
            ),
            Counter(),
        )
    )
    summary: RunSummary = {"run": cast(RunInfo, run), "leaves": per_leaf, "totals": totals}
    write_json_atomic(layout.summary, summary)
    return summary


def with_context(sample: dict) -> dict | None:
    """A knowledge sample as reading comprehension: its chunk, a blank line, then the question (the form
    grounded skills and held-out seeds with context use). Same keys, same messages shape; None for a
    sample that does not carry its chunk text."""
    context = _as_dict(sample.get("provenance")).get("context")
    messages = sample.get("messages")
    if not isinstance(context, str) or not context.strip() or not isinstance(messages, list):
        return None
    turns = [dict(m) if isinstance(m, dict) else m for m in messages]
    users = [n for n, m in enumerate(turns) if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        return None
    turn = turns[users[-1]]
    turn["content"] = f"{context}\n\n{turn.get('content', '')}"
    return {**sample, "messages": turns}


def _as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _count(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
