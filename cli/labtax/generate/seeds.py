"""Which seed examples the teacher sees and which are held out for the training evaluation.

Held-out seeds never appear in a prompt, so `labtax train` can measure whether the generated data taught
the model something it was not shown. Deterministic: every 5th question/answer pair (the 5th, 10th...) is
held out, so a leaf with the minimum 5 examples keeps 4 for prompting and 1 for evaluation.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

HOLDOUT_EVERY = 5


def qa_items(leaf) -> list[dict]:
    """Flat question/answer(/context) items of a leaf, in file order."""
    items = []
    for i, example in enumerate(leaf.seed_examples()):
        if leaf.kind == "knowledge":
            for qa in example.get("questions_and_answers") or []:
                if isinstance(qa, dict):
                    items.append(
                        {
                            "question": str(qa.get("question", "")).strip(),
                            "answer": str(qa.get("answer", "")).strip(),
                            "context": str(example.get("context", "")).strip(),
                            "example": i,
                        }
                    )
        else:
            item = {
                "question": str(example.get("question", "")).strip(),
                "answer": str(example.get("answer", "")).strip(),
                "example": i,
            }
            if example.get("context"):
                item["context"] = str(example["context"]).strip()
            items.append(item)
    return items


def split(leaf) -> tuple[list[dict], list[dict]]:
    items = qa_items(leaf)
    if len(items) < 2:
        return items, []
    prompt = [it for n, it in enumerate(items, 1) if n % HOLDOUT_EVERY]
    heldout = [it for n, it in enumerate(items, 1) if not n % HOLDOUT_EVERY]
    return prompt, heldout


def seed_hash(items: list[dict]) -> str:
    return hashlib.sha256(json.dumps(items, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


# A candidate is held to the leaf's own format: at least this fraction of the leaf's shortest seed (in words),
# and never more than the fixed floors labtax used before bounds came from the seeds (a leaf of long texts
# keeps accepting what it did; a leaf of 3-word contexts or 2-word questions gets bounds it can meet).
MIN_FRACTION = 0.5
QUESTION_FLOOR = 3
CONTEXT_FLOOR = 15
ANSWER_WORDS = 600  # the answer budget of the cheap checks (gate/checks.py too_long), raised for long seed answers
# A generation stage's max_tokens is raised, where the leaf's longest seed of that field needs it, to that seed's
# characters / CHARS_PER_TOKEN: English runs about 4 characters a token; 3 leaves a third more room, for numbers,
# tables and a teacher that writes a little longer than the seeds.
CHARS_PER_TOKEN = 3


@dataclass(frozen=True)
class LeafShape:
    """What a leaf's own seeds look like, and the bounds derived from them that its candidates are held to
    (issue #29: a rule that the leaf's own seeds would fail rejects the leaf's format, not bad data)."""

    shortest_question: int = QUESTION_FLOOR * 2  # words
    shortest_context: int = CONTEXT_FLOOR * 2
    longest_question: int = 0  # characters
    longest_context: int = 0
    longest_answer: int = 0
    longest_answer_words: int = 0

    @classmethod
    def of(cls, items: list[dict]) -> LeafShape:
        questions = [it["question"] for it in items if it.get("question")]
        contexts = [it["context"] for it in items if it.get("context")]
        answers = [it["answer"] for it in items if it.get("answer")]
        return cls(
            min((len(q.split()) for q in questions), default=QUESTION_FLOOR * 2),
            min((len(c.split()) for c in contexts), default=CONTEXT_FLOOR * 2),
            max(map(len, questions), default=0),
            max(map(len, contexts), default=0),
            max(map(len, answers), default=0),
            max((len(a.split()) for a in answers), default=0),
        )

    @property
    def min_question_words(self) -> int:
        return min(QUESTION_FLOOR, max(1, int(self.shortest_question * MIN_FRACTION)))

    @property
    def min_context_words(self) -> int:
        return min(CONTEXT_FLOOR, max(1, int(self.shortest_context * MIN_FRACTION)))

    @property
    def max_answer_words(self) -> int:
        return max(ANSWER_WORDS, 2 * self.longest_answer_words)

    def max_tokens(self, defaults: dict[str, int]) -> dict[str, int]:
        """Each stage's max_tokens: its prompt file's, raised where the leaf's longest seed of what the stage
        writes (question, context, answer; both for knowledge's qa) would not fit in it."""
        needs = {
            "question": self.longest_question,
            "context": self.longest_context,
            "answer": self.longest_answer,
            "qa": self.longest_question + self.longest_answer,
        }
        return {
            stage: max(default, math.ceil(needs.get(stage, 0) / CHARS_PER_TOKEN)) for stage, default in defaults.items()
        }
