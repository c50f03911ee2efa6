"""What a branch changed, as leaves: git access (git.py) and changed-leaf detection (leaves.py)."""

from __future__ import annotations

from pathlib import Path

from labtax.taxonomy.select import Selection, files_for_paths, tree_files


def select(
    root: Path, paths: list[str] | tuple = (), *, changed: bool = False, base: str | None = None, env=None
) -> Selection:
    """The files a command works on: PATHS, or the whole taxonomy; with changed/base, only changed leaves."""
    if changed or base is not None:
        from labtax.changes.leaves import changed_selection

        return changed_selection(root, base, paths, env=env)
    if paths:
        return Selection(root, files_for_paths(root, list(paths)), explicit=True)
    return Selection(root, tree_files(root))
