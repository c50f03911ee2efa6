"""Where a knowledge leaf's documents are, and reading them.

Two sources: InstructLab's remote `repo` + `commit` + `patterns`, and (labtax) documents kept in this
repository: `repo` is a path relative to the taxonomy root starting with './', and `commit` is HEAD,
meaning the working tree. In-repo documents work offline and show up in `labtax diff`.
"""

from __future__ import annotations

import glob
from pathlib import Path, PurePosixPath

LOCAL_PREFIX = "./"
LOCAL_COMMIT = "HEAD"


def is_local(document: dict) -> bool:
    repo = document.get("repo")
    return isinstance(repo, str) and repo.startswith(LOCAL_PREFIX)


def local_folder(root: Path, document: dict) -> Path:
    return (root / PurePosixPath(document["repo"])).resolve()


def local_files(root: Path, document: dict) -> list[Path]:
    """Files matched by the patterns inside an in-repo document folder, sorted, never outside the root."""
    folder = local_folder(root, document)
    root = root.resolve()
    found: set[Path] = set()
    for pattern in document.get("patterns") or []:
        if not isinstance(pattern, str):
            continue
        for match in glob.glob(pattern, root_dir=folder, recursive=True):
            path = (folder / match).resolve()
            if path.is_file() and path.is_relative_to(root):
                found.add(path)
    return sorted(found)
