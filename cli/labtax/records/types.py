"""The records generation writes and every later stage reads (schema/records/ is their JSON Schema): a sample,
a rejection and a held-out seed (rows of the .jsonl files), a leaf's summary and the run's (summary.json).

The gate's verdict on a leaf is a field (`gate` in the leaf summary, `judge.vetted` in a sample), never
prose: the note a leaf carries is the generator's own, and the sentence that says a leaf is unvetted is
rendered from the field, here, for whoever shows it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, cast

from labtax.records import jsonl


class Message(TypedDict):
    role: str
    content: str


class Criterion(TypedDict):
    name: str
    score: int
    probability: float | None
    reason: str


class JudgeRecord(TypedDict):
    criteria: list[Criterion]
    probability: float | None
    vetted: str  # "yes" | "no" | "unknown": the gate's verdict on the leaf, as text (one type per column)


class Sample(TypedDict):
    id: str
    messages: list[Message]
    leaf: str
    kind: str
    provenance: dict
    judge: JudgeRecord


class Candidate(TypedDict):
    question: str
    answer: str
    context: str
    raw: str


class Rejected(TypedDict):
    leaf: str
    stage: str
    reason: str
    candidate: Candidate
    detail: str
    sample_index: int
    chunk: str


class HeldOut(TypedDict):
    leaf: str
    kind: str
    messages: list[Message]


class LeafSummary(TypedDict, total=False):
    kind: str
    pipeline: str
    prompt_version: str
    requested: int
    generated: int
    accepted: int
    rejected: dict[str, int]
    rejected_by_stage: dict[str, int]
    teacher_calls: int
    cached_calls: int
    tokens: int
    seconds: float
    note: str | None  # the generator's own note; the gate's verdict is `gate`
    gate: dict
    generated_at: str
    held_back: int  # in the run summary: accepted samples kept out of the training files, unvetted
    prompts_shortened: int  # calls answered with a prompt shortened to fit the model's context window


class RunInfo(TypedDict, total=False):
    """summary.json's `run` (schema/records/v1/summary.json): what ran, with which settings, over which leaves."""

    teacher: str
    model: str
    judge: str
    judge_model: str
    judge_logprobs: bool | None
    judge_scores: bool
    commit: str | None
    started: str | None
    seconds: float
    num_samples: int
    max_attempts: int
    dedup_threshold: float
    keep_unvetted: bool
    pipeline_versions: list[str]
    leaves: list[str]
    skipped: list[dict]


class Totals(TypedDict, total=False):
    """summary.json's `totals`: the leaves' counts summed, rejections by reason."""

    requested: int
    generated: int
    accepted: int
    teacher_calls: int
    cached_calls: int
    tokens: int
    held_back: int
    rejected: dict[str, int]


class RunSummary(TypedDict):
    run: RunInfo
    leaves: dict[str, LeafSummary]
    totals: Totals


UNVETTED = "the judge could not separate good from bad on this leaf's own examples; accepted samples are unvetted"


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class GateVerdict:
    """The gate's calibration on a leaf's own seeds: good accepted, bad rejected, and whether it separates
    them (None: nothing to calibrate on, or calibration incomplete)."""

    good_accepted: int
    good_total: int
    bad_rejected: int
    bad_total: int
    separates: bool | None
    incomplete: bool = False
    failed_calls: int = 0
    failure: str = ""

    @classmethod
    def from_json(cls, value: object) -> GateVerdict | None:
        """The verdict of a leaf summary's `gate`, read tolerantly (an untrusted run's summary.json): None when
        a count is missing or not a whole number."""
        gate = value if isinstance(value, dict) else {}
        counts = [_int(gate.get(key)) for key in ("good_accepted", "good_total", "bad_rejected", "bad_total")]
        separates = gate.get("separates")
        if any(c is None for c in counts) or not (separates is None or isinstance(separates, bool)):
            return None
        good_accepted, good_total, bad_rejected, bad_total = (c or 0 for c in counts)
        failure = gate.get("failure")
        return cls(
            good_accepted,
            good_total,
            bad_rejected,
            bad_total,
            separates,
            gate.get("incomplete") is True,
            _int(gate.get("failed_calls")) or 0,
            failure if isinstance(failure, str) else "",
        )

    @property
    def precision(self) -> float | None:
        """Good among what the gate accepted in its calibration (None when it accepted nothing)."""
        accepted = self.good_accepted + self.bad_total - self.bad_rejected
        return self.good_accepted / accepted if accepted else None

    @property
    def unvetted(self) -> bool:
        """The gate could not tell the leaf's good seeds from corrupted ones."""
        return self.separates is False

    def warning(self) -> str | None:
        """What a reader must be told about the leaf's samples, or None when the gate vetted them (or had
        nothing to calibrate on)."""
        if self.incomplete:
            return (
                f"calibration incomplete: {self.failed_calls} of the gate's calibration calls failed ({self.failure}); "
                "the gate used its default thresholds and the samples are not vetted; re-run the same command to "
                "complete it (finished calls are cached)"
            )
        if self.unvetted:
            return (
                f"{UNVETTED} (held-out seeds accepted {self.good_accepted}/{self.good_total}, corrupted ones rejected "
                f"{self.bad_rejected}/{self.bad_total})"
            )
        return None


# Measured (bench/graded/README.md): read one by one, almost nothing the embedded teacher writes is right.
SMOKE_TEST = (
    "the embedded SmolLM2-135M teacher is a smoke test of the pipeline, not a source of training data: of 409 "
    "candidates it wrote for 25 real leaves, read one by one, 3 were right, and its own judge's gate kept 1 good "
    "in 72 on held-out leaves (bench/graded); for data to train on, generate with a stronger model (--base-url, "
    "--model) and judge"
)

NOT_CALIBRATED = (
    "the gate was not calibrated on this leaf (--no-calibrate, or no held-out seed example to calibrate on), so "
    "how well it separates good from bad here is not measured"
)


def vetted(sample: dict) -> bool:
    """Whether the gate vetted the sample: its calibration on the leaf separated good from bad."""
    judge = sample.get("judge")
    return isinstance(judge, dict) and judge.get("vetted") == "yes"


def held_back_reason(summary: LeafSummary | dict) -> str:
    """Why a leaf's unvetted samples are kept out of the training files (review/unvetted.jsonl)."""
    verdict = GateVerdict.from_json(summary.get("gate"))
    warning = verdict.warning() if verdict is not None else None
    return warning or NOT_CALIBRATED


def note_with_verdict(summary: LeafSummary | dict) -> str | None:
    """A leaf's note as a person reads it in generate's output: the gate's warning first, then the
    generator's own note."""
    verdict = GateVerdict.from_json(summary.get("gate"))
    warning = verdict.warning() if verdict is not None else None
    note = summary.get("note") if isinstance(summary.get("note"), str) else None
    return "; ".join(filter(None, [warning, note])) or None


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --------------------------------------------------------------------------- reading
# The readers validate once, tolerantly (summary.json and the .jsonl files may come from an untrusted run: a
# fork's artifact): a field of the wrong type is dropped, never passed on, so whoever renders the records
# trusts their types. A missing count stays missing (the comment says the summary lacks it), never 0.

_COUNTS = (
    "requested",
    "generated",
    "accepted",
    "teacher_calls",
    "cached_calls",
    "tokens",
    "held_back",
    "prompts_shortened",
)
_TEXTS = ("kind", "pipeline", "prompt_version", "generated_at")


def _counts(value: object) -> dict[str, int] | None:
    if not isinstance(value, dict):
        return None
    return {str(key): count for key, item in value.items() if (count := _int(item)) is not None}


def leaf_summary_from_json(value: object) -> LeafSummary:
    """A leaf's summary with every field of its type, in the order written; wrong-typed fields left out."""
    data = value if isinstance(value, dict) else {}
    leaf: LeafSummary = {}
    for key, item in data.items():
        if key in _TEXTS and isinstance(item, str):
            leaf[key] = item  # type: ignore[literal-required]
        elif key in _COUNTS and (count := _int(item)) is not None:
            leaf[key] = count  # type: ignore[literal-required]
        elif key == "seconds" and is_number(item):
            leaf["seconds"] = item
        elif key in ("rejected", "rejected_by_stage") and (counts := _counts(item)) is not None:
            leaf[key] = counts  # type: ignore[literal-required]
        elif key == "note" and (item is None or isinstance(item, str)):
            leaf["note"] = item
        elif key == "gate" and isinstance(item, dict):
            leaf["gate"] = item
    return leaf


def run_summary_from_json(data: dict) -> RunSummary:
    """summary.json's run, leaves and totals, typed: `run` and `totals` objects (`run.skipped` only its
    objects), every leaf through leaf_summary_from_json. A `leaves` that is not an object is the caller's
    error to name (ValueError)."""
    leaves = data.get("leaves", {})
    if not isinstance(leaves, dict):
        raise ValueError("'leaves' must be an object mapping leaf paths to counts")
    run = dict(data["run"]) if isinstance(data.get("run"), dict) else {}
    if "skipped" in run:
        run["skipped"] = [s for s in run["skipped"] if isinstance(s, dict)] if isinstance(run["skipped"], list) else []
    totals = data.get("totals")
    return {
        "run": cast(RunInfo, run),  # its fields are read with .get and checked where used (the comment renders them)
        "leaves": {str(path): leaf_summary_from_json(leaf) for path, leaf in leaves.items()},
        "totals": cast(Totals, totals if isinstance(totals, dict) else {}),
    }


def read_run_summary(path: Path) -> RunSummary:
    """A summary.json, typed (run_summary_from_json); OSError when it cannot be read, ValueError when it is not
    JSON or not a summary."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("a summary.json holds a JSON object")
    return run_summary_from_json(data)


def _chat(value: object) -> list[Message] | None:
    """The well-formed messages of a row (role and content strings), or None when it has no list of them."""
    if not isinstance(value, list):
        return None
    return [
        {"role": m["role"], "content": m["content"]}
        for m in value
        if isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
    ]


def read_samples(path: Path | None, limit: int | None = None) -> list[Sample]:
    """Up to `limit` samples of a samples.jsonl (or bucket file): rows with a list of messages, each message
    a role and a content string; `judge` an object ({} when missing; older labtax wrote scores/reasons)."""
    found: list[Sample] = []
    for row in jsonl.objects(path):
        chat = _chat(row.get("messages"))
        if chat is None:
            continue
        judge = row.get("judge")
        found.append(cast(Sample, {**row, "messages": chat, "judge": judge if isinstance(judge, dict) else {}}))
        if limit is not None and len(found) >= limit:
            break
    return found


def read_rejected(path: Path | None) -> Iterator[Rejected]:
    """The rejections of a rejected.jsonl with a leaf path; `leaf`, `stage`, `reason` and `detail` strings
    ("" when missing or not one). `candidate` is as written (an object now; older labtax wrote text)."""
    for row in jsonl.objects(path):
        if not isinstance(row.get("leaf"), str):
            continue
        texts = {key: row[key] if isinstance(row.get(key), str) else "" for key in ("stage", "reason", "detail")}
        yield cast(Rejected, {**row, **texts})
