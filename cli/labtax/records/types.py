"""The records generation writes and every later stage reads (schema/records/ is their JSON Schema): a sample,
a rejection and a held-out seed (rows of the .jsonl files), a leaf's summary and the run's (summary.json).

The gate's verdict on a leaf is a field (`gate` in the leaf summary, `judge.vetted` in a sample), never
prose: the note a leaf carries is the generator's own, and the sentence that says a leaf is unvetted is
rendered from the field, here, for whoever shows it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypedDict


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


class RunSummary(TypedDict):
    run: dict
    leaves: dict[str, LeafSummary]
    totals: dict


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


def note_with_verdict(summary: LeafSummary | dict) -> str | None:
    """A leaf's note as a person reads it in generate's output: the gate's warning first, then the
    generator's own note."""
    verdict = GateVerdict.from_json(summary.get("gate"))
    warning = verdict.warning() if verdict is not None else None
    note = summary.get("note") if isinstance(summary.get("note"), str) else None
    return "; ".join(filter(None, [warning, note])) or None


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
