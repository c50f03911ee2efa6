"""What a candidate ends as: accepted (a sample) or rejected (a stage and a reason). Nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Reject(Exception):
    stage: str
    # parse_failure | truncated | oversized | invalid_text | judge_score | duplicate | teacher_error | no_documents,
    # the gate's cheap checks: refusal | repetition | restates_question | wrong_language | too_long | unfinished,
    # and its measurements: off_topic (gate/relevance.py) | inconsistent (gate/consistency.py)
    reason: str
    detail: str = ""
    # What was rejected, whole: the fields written so far (question, answer, context), always a dict once the
    # pipeline has it (pipelines/common.py `keeping`); a reply that could not be used is `reply`.
    candidate: object = None
    chunk: str | None = None  # the document chunk's id, for knowledge candidates: which text it was asked about
    reply: str = ""  # the teacher's or judge's reply that could not be used (parse, oversized, invalid text)


@dataclass
class Accepted:
    index: int
    question: str
    answer: str
    user: str  # the user turn as trained on (question, or context + question for grounded skills)
    scores: dict = field(default_factory=dict)
    reasons: dict = field(default_factory=dict)
    probabilities: dict = field(default_factory=dict)  # criterion -> P(yes) when the judge can say (logprobs)
    provenance: dict = field(default_factory=dict)
