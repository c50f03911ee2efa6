"""Which seed examples the teacher sees and which are held out for the training evaluation.

Held-out seeds never appear in a prompt, so `labtax train` can measure whether the generated data taught
the model something it was not shown. Deterministic: every 5th question/answer pair (the 5th, 10th...) is
held out, so a leaf with the minimum 5 examples keeps 4 for prompting and 1 for evaluation.
"""

from __future__ import annotations

import hashlib
import json

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
