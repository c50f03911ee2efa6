"""The taxonomy's YAML files by path: the whole tree, or the files and folders a command line names (no git).

labtax.select builds a command's Selection from these (or from labtax.changes for `--changed`).
"""

from __future__ import annotations

import os
from pathlib import Path

from labtax.errors import LabtaxError
from labtax.taxonomy.kinds import LEAF_FILE, TREES

YAML_SUFFIXES = (".yaml", ".yml")


def tree_files(root: Path) -> list[str]:
    """Every YAML file under the three trees (misnamed ones included, so lint can flag them)."""
    found = []
    for tree in TREES:
        base = root / tree
        if not base.is_dir():
            continue
        for folder, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            rel_folder = os.path.relpath(folder, root).replace(os.sep, "/")
            found += [f"{rel_folder}/{name}" for name in files if name.lower().endswith(YAML_SUFFIXES)]
    return sorted(found)


def relative_path(root: Path, path: Path) -> str:
    absolute = path if path.is_absolute() else Path.cwd() / path
    absolute = Path(os.path.normpath(absolute))
    try:
        return absolute.relative_to(root).as_posix()
    except ValueError:
        raise LabtaxError(
            f"{path} is outside the taxonomy root {root}; run labtax from inside the taxonomy or pass --root"
        ) from None


def files_for_paths(root: Path, paths: list[str]) -> list[str]:
    """Files named on the command line: YAML files as given, folders walked, attribution.txt -> its leaf."""
    selected: set[str] = set()
    for raw in paths:
        path = Path(raw)
        rel = relative_path(root, path)
        full = root / rel
        if full.is_dir():
            for folder, dirs, files in os.walk(full):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                sub = os.path.relpath(folder, root).replace(os.sep, "/")
                selected.update(f"{sub}/{n}".removeprefix("./") for n in files if n.lower().endswith(YAML_SUFFIXES))
        elif not full.exists() and not full.is_symlink():
            raise LabtaxError(f"{raw}: no such file or folder")
        elif rel.lower().endswith(YAML_SUFFIXES):
            selected.add(rel)
        elif full.name == "attribution.txt" and (full.parent / LEAF_FILE).is_file():
            selected.add(str(Path(rel).parent / LEAF_FILE).replace(os.sep, "/"))
    return sorted(selected)
