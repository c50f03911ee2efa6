"""Leaf: one parsed qna.yaml with the source position of every node."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NodePath = tuple  # keys and indexes from the document root, e.g. ("seed_examples", 2, "answer")


@dataclass
class Leaf:
    path: str  # relative to the taxonomy root, POSIX separators
    root: Path  # the taxonomy root
    kind: str  # knowledge | compositional | foundational
    version: int
    data: dict[str, Any]
    text: str
    content_hash: str
    positions: dict[NodePath, tuple[int, int]] = field(default_factory=dict)  # value node -> (line, col)
    key_positions: dict[NodePath, tuple[int, int]] = field(default_factory=dict)  # mapping key -> (line, col)

    @property
    def abs_path(self) -> Path:
        return self.root / self.path

    @property
    def folder(self) -> str:
        return self.path.rsplit("/", 1)[0] if "/" in self.path else ""

    def pos(self, node_path: NodePath, *, key: bool = False) -> tuple[int, int]:
        """Where a node is; falls back to its nearest existing ancestor (a missing field -> its parent)."""
        node_path = tuple(node_path)
        table = self.key_positions if key else self.positions
        if node_path in table:
            return table[node_path]
        while node_path:
            node_path = node_path[:-1]
            if node_path in self.positions:
                return self.positions[node_path]
        return (1, 1)

    def seed_examples(self) -> list[dict]:
        examples = self.data.get("seed_examples")
        return [e for e in examples if isinstance(e, dict)] if isinstance(examples, list) else []

    def qa_pairs(self) -> list[tuple[NodePath, dict]]:
        """Every question/answer pair with its node path, for skills and knowledge alike."""
        pairs: list[tuple[NodePath, dict]] = []
        for i, example in enumerate(self.seed_examples()):
            if self.kind == "knowledge":
                qas = example.get("questions_and_answers")
                if isinstance(qas, list):
                    pairs += [
                        (("seed_examples", i, "questions_and_answers", j), qa)
                        for j, qa in enumerate(qas)
                        if isinstance(qa, dict)
                    ]
            else:
                pairs.append((("seed_examples", i), example))
        return pairs
