"""Which files a command works on: PATHS, the whole taxonomy, or (`--changed` / `--base`) the leaves a branch
changed. commands/options.py puts all three behind the same options, so lint, generate, diff and train select
alike.

It sits above both `taxonomy` (paths) and `changes` (git): a Selection carries the changed leaves when there
are any. gitpython is imported only on the `--changed` path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from labtax.taxonomy.paths import files_for_paths, relative_path, tree_files
from labtax.wording import counted

if TYPE_CHECKING:
    from labtax.changes.git import ChangeSet
    from labtax.changes.leaves import LeafChange


@dataclass
class Selection:
    root: Path
    files: list[str]  # paths relative to root, POSIX separators, sorted
    explicit: bool = False  # paths were named by the user (or pre-commit), not discovered
    notes: list[str] = field(default_factory=list)
    changes: list[LeafChange] | None = None  # with --changed: every changed leaf (deleted ones too), else None
    changeset: ChangeSet | None = None  # with --changed: base, merge-base, head


def select(
    root: Path, paths: list[str] | tuple = (), *, changed: bool = False, base: str | None = None, env=None
) -> Selection:
    """The files a command works on: PATHS, or the whole taxonomy; with changed/base, only changed leaves."""
    if changed or base is not None:
        return changed_selection(root, base, paths, env=env)
    if paths:
        return Selection(root, files_for_paths(root, list(paths)), explicit=True)
    return Selection(root, tree_files(root))


def _under(path: str, scopes: list[str]) -> bool:
    return any(scope in ("", ".") or path == scope or path.startswith(scope.rstrip("/") + "/") for scope in scopes)


def changed_selection(
    root: Path, base: str | None = None, paths: list[str] | tuple = (), env: dict | None = None
) -> Selection:
    """The --changed selection: changed leaves (and changed misnamed YAML files, so lint flags them),
    optionally only those under PATHS."""
    from labtax.changes.leaves import changed_leaves

    root = Path(root).resolve()
    changes, stray, changeset = changed_leaves(root, base, env=env)
    if paths:
        scopes = [relative_path(root, Path(p)) for p in paths]
        changes = [c for c in changes if _under(c.path, scopes) or (c.old_path and _under(c.old_path, scopes))]
        stray = [s for s in stray if _under(s, scopes)]
    files = sorted({c.path for c in changes if c.status != "deleted"} | set(stray))
    notes = list(changeset.notes)
    gone = sum(c.status == "deleted" for c in changes)
    if gone:
        notes.append(f"{counted(gone, 'deleted leaf')} not selected")
    return Selection(root, files, explicit=False, notes=notes, changes=changes, changeset=changeset)
