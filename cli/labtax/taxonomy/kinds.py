"""The three trees of a LAB taxonomy and how a path maps to a leaf kind."""

from __future__ import annotations

from pathlib import PurePosixPath

TREES = {
    "compositional_skills": "compositional",
    "foundational_skills": "foundational",
    "knowledge": "knowledge",
}
KIND_TREE = {kind: tree for tree, kind in TREES.items()}
LEAF_FILE = "qna.yaml"


def tree_of(relpath: str) -> str | None:
    """The tree folder a path lies in: the last path part that names a tree.

    Searching from the end, as InstructLab does, makes copies of a taxonomy nested inside other
    folders (fixtures, history snapshots) resolve the same way as the real tree.
    """
    parts = PurePosixPath(relpath).parts
    for part in reversed(parts[:-1]):
        if part in TREES:
            return part
    return None


def kind_of(relpath: str, data: object = None) -> str:
    """Leaf kind from its tree; outside the trees, guess like InstructLab (a document means knowledge)."""
    tree = tree_of(relpath)
    if tree:
        return TREES[tree]
    if isinstance(data, dict) and "document" in data:
        return "knowledge"
    return "compositional"


def folders_below_tree(relpath: str) -> list[str]:
    """Folder names between the tree folder and the file (the leaf's taxonomy path)."""
    parts = PurePosixPath(relpath).parts
    tree = tree_of(relpath)
    if tree is None:
        return []
    last = len(parts) - 1 - list(reversed(parts[:-1])).index(tree) - 1
    return list(parts[last + 1 : -1])
