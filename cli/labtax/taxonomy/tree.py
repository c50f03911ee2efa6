"""The taxonomy as a tree (`labtax tree`): the number of leaves under every branch and tree, and its text and
JSON renderings.

It shows where contributions sit and which branches are thin, without reading any leaf: a leaf is a
folder holding a qna.yaml, the same files `labtax lint` finds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from labtax.taxonomy.kinds import LEAF_FILE, TREES


@dataclass
class Node:
    name: str
    path: str  # relative to the taxonomy root, POSIX separators
    is_leaf: bool = False  # this folder holds a qna.yaml
    children: dict[str, Node] = field(default_factory=dict)

    @property
    def leaves(self) -> int:
        return int(self.is_leaf) + sum(child.leaves for child in self.children.values())

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "path": self.path,
            "leaf": self.is_leaf,
            "leaves": self.leaves,
            "children": [self.children[k].as_dict() for k in sorted(self.children)],
        }


def build_trees(root: Path) -> list[Node]:
    """One Node per tree (all three, empty ones too), holding only folders with leaves below them."""
    from labtax.taxonomy.paths import tree_files

    trees = {name: Node(name, name) for name in TREES}
    for rel in tree_files(root):
        parts = rel.split("/")
        if parts[-1] != LEAF_FILE or parts[0] not in trees:
            continue
        node = trees[parts[0]]
        for depth, part in enumerate(parts[1:-1], start=2):
            node = node.children.setdefault(part, Node(part, "/".join(parts[:depth])))
        node.is_leaf = True
    return [trees[name] for name in TREES]


def _count(n: int) -> str:
    return f"{n} leaf" if n == 1 else f"{n} leaves"


def render_text(trees: list[Node], max_depth: int | None) -> str:
    lines: list[str] = []

    def walk(node: Node, prefix: str, depth: int) -> None:
        kids = [node.children[k] for k in sorted(node.children)]
        for i, child in enumerate(kids):
            last = i == len(kids) - 1
            if child.children:
                label = f"{child.name}/ ({_count(child.leaves)})" + ("  [also a leaf]" if child.is_leaf else "")
            else:
                label = child.name
            lines.append(prefix + ("└── " if last else "├── ") + label)
            if child.children and (max_depth is None or depth < max_depth):
                walk(child, prefix + ("    " if last else "│   "), depth + 1)

    for tree in trees:
        lines.append(f"{tree.name}/ ({_count(tree.leaves)})")
        walk(tree, "", 1)
    lines.append(f"total: {_count(sum(t.leaves for t in trees))}")
    return "\n".join(lines) + "\n"


def render_json(root: Path, trees: list[Node]) -> str:
    payload = {
        "root": str(root),
        "leaves": sum(t.leaves for t in trees),
        "trees": [{**t.as_dict(), "kind": TREES[t.name]} for t in trees],
    }
    return json.dumps(payload, indent=2) + "\n"
