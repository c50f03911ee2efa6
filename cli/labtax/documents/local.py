"""Documents kept in this repository (`repo: ./path`, `commit: HEAD`): the working tree, walked safely."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

LOCAL_PREFIX = "./"
LOCAL_COMMIT = "HEAD"


def is_local(document: dict) -> bool:
    repo = document.get("repo")
    return isinstance(repo, str) and repo.startswith(LOCAL_PREFIX)


def local_folder(root: Path, document: dict) -> Path:
    return (root / PurePosixPath(document["repo"])).resolve()


MAX_WALK_ENTRIES = 20_000  # files and folders looked at per document folder: a bound, not a real limit
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024


def glob_match(pattern: str, rel: str) -> bool:
    """Does the file `rel` match a glob pattern as glob.glob(pattern, recursive=True) would find it (hidden
    names only by a pattern part that starts with '.')?

    One pass over the path with the set of pattern parts reached so far (a Thompson NFA): time is path
    parts x pattern parts, whatever the `**`. Trying every split of the path among the `**`s, as the
    recursive matcher did, is exponential: eight `**` over a deep folder hung lint, diff and generate.
    """
    import fnmatch

    pat = [p for p in pattern.split("/") if p not in ("", ".")]
    if pat and pat[-1] == "**":
        pat.append("*")  # a trailing `**` ends in a folder's contents: glob finds no file at zero parts

    def closure(states: set[int]) -> set[int]:
        out = set(states)
        for j in sorted(states):
            while j < len(pat) and pat[j] == "**":  # `**` may match no part at all
                j += 1
                out.add(j)
        return out

    states = closure({0})
    for part in rel.split("/"):
        hidden = part.startswith(".")
        following = set()
        for j in states:
            if j == len(pat):
                continue
            if pat[j] == "**":
                if not hidden:
                    following.add(j)
            elif (not hidden or pat[j].startswith(".")) and fnmatch.fnmatchcase(part, pat[j]):
                following.add(j + 1)
        if not following:
            return False
        states = closure(following)
    return len(pat) in states


@dataclass
class LocalFiles:
    files: list[Path]  # regular files inside the repository that the patterns match, sorted
    problems: list[str]  # matched entries that are not read, and why


def scan_local(root: Path, document: dict) -> LocalFiles:
    """Walk an in-repo document folder once, bounded, never following a folder link (`a -> .` or `-> /`
    would make a glob walk forever or out of the repository); matched file links are read only when
    they resolve to a regular file inside the repository."""
    from labtax.taxonomy.files import resolve_inside
    from labtax.taxonomy.problems import LoadProblem

    root = root.resolve()
    folder = local_folder(root, document)
    patterns = [p for p in document.get("patterns") or [] if isinstance(p, str)]
    found, problems, seen = [], [], 0
    if not patterns or not folder.is_relative_to(root) or not folder.is_dir():
        return LocalFiles([], [])
    for current, dirs, names in os.walk(folder):  # followlinks=False: folder links are listed, not entered
        seen += len(dirs) + len(names)
        if seen > MAX_WALK_ENTRIES:
            problems.append(
                f"more than {MAX_WALK_ENTRIES} files and folders under '{document['repo']}'; stopped looking (narrow the folder)"
            )
            break
        dirs.sort()
        rel_dir = os.path.relpath(current, folder).replace(os.sep, "/")
        for name in sorted(names + [d for d in dirs if os.path.islink(os.path.join(current, d))]):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if not any(glob_match(p, rel) for p in patterns):
                continue
            path = Path(current, name)
            try:
                real = resolve_inside(path, root)
            except LoadProblem as problem:
                problems.append(f"document '{rel}' is not read: {problem.message}")
                continue
            if not real.is_file():
                problems.append(f"document '{rel}' is not read: it is not a regular file")
            elif path.is_symlink() and not real.is_relative_to(folder):
                problems.append(
                    f"document '{rel}' is not read: it links outside the documents folder (to {real.relative_to(root)})"
                )
            else:
                found.append(path)
    return LocalFiles(sorted(set(found)), problems)


def local_files(root: Path, document: dict) -> list[Path]:
    """Files matched by the patterns inside an in-repo document folder, sorted, never outside the root."""
    return scan_local(root, document).files
