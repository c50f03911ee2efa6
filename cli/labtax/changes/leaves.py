"""A branch's changed leaves: which files changed (labtax.changes.git) mapped onto leaves.

Steps: classify each changed file (a leaf, a misnamed YAML file, an attribution.txt, something else) ->
map attribution and in-repo document changes to the leaves they belong to -> describe each leaf (kind,
version, problems). `labtax diff` lists the result and every --changed command selects through it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from labtax.errors import LabtaxError
from labtax.taxonomy.kinds import LEAF_FILE, TREES
from labtax.taxonomy.paths import YAML_SUFFIXES, tree_files

if TYPE_CHECKING:
    from labtax.changes.git import ChangeSet

## Which leaves changed = which files changed (labtax.changes.git: merge-base of the base and HEAD, to the
# working tree) mapped onto leaves: a qna.yaml under a tree is a leaf; a change to the attribution.txt
# beside it, or to an in-repo document a knowledge leaf reads (document: {repo: ./path, patterns}),
# marks that leaf modified, with the reason. Default base, first that exists: $GITHUB_BASE_REF
# (origin/<it> preferred), the current branch's upstream (unless that is just its own pushed copy),
# origin/main, origin/master, main, master. `--base empty` compares with nothing: every leaf is added.

ATTRIBUTION = "attribution.txt"


@dataclass
class LeafChange:
    """One changed leaf, as `labtax diff` lists it and every --changed command selects it."""

    path: str  # relative to the taxonomy root; for a deletion, where it was
    status: str  # added | modified | renamed | deleted
    kind: str  # knowledge | compositional | foundational
    version: int | None = None  # None when the file cannot be read as a leaf
    old_path: str | None = None  # renames only
    reasons: list[str] = field(default_factory=list)  # why it counts as changed
    problems: list[str] = field(default_factory=list)  # why it is invalid (loader problems, lint errors)

    @property
    def valid(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {
            "path": self.path,
            "status": self.status,
            "old_path": self.old_path,
            "kind": self.kind,
            "version": self.version,
            "valid": self.valid,
            "reasons": self.reasons,
            "problems": self.problems,
        }


def _in_trees(rel: str) -> bool:
    """Inside one of the three trees, in a folder tree_files() would walk (no hidden folders)."""
    parts = rel.split("/")
    return len(parts) > 1 and parts[0] in TREES and not any(p.startswith(".") for p in parts[1:-1])


def _is_leaf(rel: str | None) -> bool:
    return rel is not None and _in_trees(rel) and rel.rsplit("/", 1)[-1] == LEAF_FILE


def _is_attribution(rel: str | None) -> bool:
    return rel is not None and _in_trees(rel) and rel.rsplit("/", 1)[-1] == ATTRIBUTION


def _folder(rel: str) -> str:
    return rel.rsplit("/", 1)[0] if "/" in rel else ""


_REPO_FIELD = None


def _local_repos(text: str) -> list[str] | None:
    """The in-repo document folders a leaf's text names (`repo: ./x`), or None when unsure.

    A cheap prefilter so a change to one document does not parse every knowledge leaf; any leaf whose
    text mentions './' in a way this does not recognise is parsed properly instead.
    """
    import re

    global _REPO_FIELD
    _REPO_FIELD = _REPO_FIELD or re.compile(r"""repo\s*:\s*["']?\./([^"'\s,}#]*)""")
    found, at = [], text.find("repo")
    while at != -1:
        match = _REPO_FIELD.match(text, at)
        if match:
            found.append(os.path.normpath(match.group(1) or ".").replace(os.sep, "/"))
        at = text.find("repo", at + 4)
    return found or None


def _document_users(root: Path, documents_changed: dict[str, str], knowledge_leaves: list[str]) -> dict[str, list[str]]:
    """Knowledge leaves reading an in-repo document that changed: leaf path -> reasons.

    Only runs when non-leaf files changed. Leaves naming no folder that holds a changed file are
    skipped after a text scan; the rest are loaded with the safe loader and matched exactly.
    """
    from labtax import documents
    from labtax.taxonomy.loader import LoadLimits, LoadProblem, load_leaf, read_text

    limits = LoadLimits()
    ancestors = {"."} | {"/".join(p.split("/")[:n]) for p in documents_changed for n in range(1, p.count("/") + 1)}
    users: dict[str, list[str]] = {}
    for rel in knowledge_leaves:
        try:
            text = read_text(root / rel, root, limits)  # guarded: a leaf may be a link to /dev/zero or a FIFO
            if documents.LOCAL_PREFIX not in text:
                continue
            named = _local_repos(text)
            if named is not None and not ancestors.intersection(named):
                continue
            leaf = load_leaf(root, rel, limits)
        except LoadProblem:
            continue
        document = leaf.data.get("document")
        if not isinstance(document, dict) or not documents.is_local(document):
            continue
        folder = os.path.normpath(document["repo"]).replace(os.sep, "/")
        patterns = [p for p in document.get("patterns") or [] if isinstance(p, str)]
        for path, status in documents_changed.items():
            inside = (
                path[len(folder) + 1 :]
                if folder != "." and path.startswith(folder + "/")
                else (path if folder == "." else None)
            )
            if inside and any(documents.glob_match(p, inside) for p in patterns):
                users.setdefault(rel, []).append(f"document {path} {status}")
    return users


def _describe(root: Path, change: LeafChange, old_text: bytes | None = None) -> None:
    """Fill in kind and version from the file (or its old contents), flagging what the loader refuses."""
    from labtax.taxonomy.kinds import kind_of
    from labtax.taxonomy.loader import LoadLimits, LoadProblem, document_version, load_leaf, parse_text

    change.kind = kind_of(change.path)
    try:
        if change.status == "deleted":
            if old_text is None:
                return
            data = parse_text(old_text.decode("utf-8", "replace"), LoadLimits())[0]
            if isinstance(data, dict):
                change.kind, change.version = kind_of(change.path, data), document_version(data)
            return
        leaf = load_leaf(root, change.path)
        change.kind, change.version = leaf.kind, leaf.version
    except LoadProblem as problem:
        if change.status != "deleted":
            change.problems.append(f"{problem.message} (line {problem.line}, col {problem.col})")
    except OSError as exc:
        change.problems.append(f"cannot read file: {exc.strerror or exc}")


@dataclass
class _Classified:
    """Step 1's result: every changed file put in its place."""

    leaves: dict[str, LeafChange] = field(default_factory=dict)  # leaf path -> its change
    stray: set[str] = field(default_factory=set)  # misnamed YAML files in the trees (lint flags them)
    attributions: dict[str, str] = field(default_factory=dict)  # leaf path -> why its attribution.txt counts
    others: dict[str, str] = field(default_factory=dict)  # anything else (maybe a document): path -> status


def _file_changes(root: Path, base: str | None, env: dict | None) -> tuple[ChangeSet, str]:
    """Step 0: the changed files (git), and the taxonomy root's prefix inside the repository."""
    from labtax.changes import git as gitdiff

    if not root.is_dir():
        raise LabtaxError(f"taxonomy root {root} does not exist; pass --root")
    try:
        repo = gitdiff.open_repo(root)
    except LabtaxError:
        if base != gitdiff.EMPTY:
            raise
        repo = None  # every leaf needs no history: the files on disk are the answer
    if repo is None:
        files = [gitdiff.FileChange("added", path) for path in tree_files(root)]
        return gitdiff.ChangeSet(root, gitdiff.EMPTY, "not a git repository", None, None, None, False, files), ""
    toplevel = Path(repo.working_tree_dir).resolve()
    try:
        prefix = root.relative_to(toplevel).as_posix()
    except ValueError:
        raise LabtaxError(f"taxonomy root {root} is outside the git repository at {toplevel}") from None
    prefix = "" if prefix == "." else prefix + "/"
    return gitdiff.changed_files(root, base, [prefix] if prefix else [], env=env), prefix


def _classify(changeset: ChangeSet, prefix: str) -> _Classified:
    """Step 1: each changed file as a leaf change, a stray YAML file, an attribution change or other."""

    def local(path: str | None) -> str | None:
        return path[len(prefix) :] if path is not None and path.startswith(prefix) else None

    leaf_renames = {
        c.path: c.old_path
        for c in changeset.changes
        if c.status == "renamed" and _is_leaf(local(c.path)) and _is_leaf(local(c.old_path))
    }

    def moved_with(new: str, old: str) -> bool:
        return _folder(leaf_renames.get(prefix + _folder(new) + "/" + LEAF_FILE) or "") == prefix + _folder(old)

    out = _Classified()
    for change in changeset.changes:
        new, old = local(change.path), local(change.old_path)
        status = "added" if change.status == "renamed" and old is None else change.status  # moved in from outside
        if status == "renamed" and new is not None and old is not None:
            if _is_attribution(new) and _is_attribution(old):
                # Moved along with its leaf and unchanged: the leaf's rename says it all.
                if change.similarity != 100 or not moved_with(new, old):
                    out.attributions[_folder(new) + "/" + LEAF_FILE] = f"{ATTRIBUTION} renamed from {old}"
                    out.attributions[_folder(old) + "/" + LEAF_FILE] = f"{ATTRIBUTION} moved to {new}"
                continue
            if _is_leaf(new) and _is_leaf(old):
                out.leaves[new] = LeafChange(new, "renamed", "", old_path=old, reasons=[f"renamed from {old}"])
                continue
            # A rename that turns a leaf into something else (or back) is a deletion plus an addition.
            pieces: list[tuple[str, str | None]] = [("deleted", old), ("added", new)]
        else:
            pieces = [(status, new)]
        for piece_status, path in pieces:
            if path is not None:
                _place(out, piece_status, path)
    return out


def _place(out: _Classified, status: str, path: str) -> None:
    if _is_leaf(path):
        out.leaves[path] = LeafChange(path, status, "", reasons=[f"{LEAF_FILE} {status}"])
    elif _in_trees(path) and path.rsplit("/", 1)[-1].lower().endswith(YAML_SUFFIXES):
        if status != "deleted":
            out.stray.add(path)
    elif _is_attribution(path):
        out.attributions[_folder(path) + "/" + LEAF_FILE] = f"{ATTRIBUTION} {status}"
    else:
        out.others[path] = status


def _map_related(root: Path, changeset: ChangeSet, prefix: str, found: _Classified) -> None:
    """Step 2: an attribution.txt or in-repo document change marks the leaf it belongs to."""
    from labtax.changes import git as gitdiff

    def mark(path: str, reasons: list[str]) -> None:
        if path in found.leaves:
            if found.leaves[path].status != "deleted":
                found.leaves[path].reasons += reasons
        elif (root / path).is_file():
            found.leaves[path] = LeafChange(path, "modified", "", reasons=list(reasons))

    for path, reason in found.attributions.items():
        if path not in found.leaves or found.leaves[path].status != "added":  # a new leaf's attribution is new too
            mark(path, [reason])
    if found.others:
        listed = (gitdiff.tracked_files(changeset.repo, [prefix + "knowledge/"]) if changeset.repo else []) + list(
            changeset.untracked
        )
        knowledge = sorted(
            {p[len(prefix) :] for p in listed if p.startswith(prefix + "knowledge/") and _is_leaf(p[len(prefix) :])}
        )
        for path, reasons in _document_users(root, found.others, knowledge).items():
            mark(path, reasons)


def _describe_all(root: Path, changeset: ChangeSet, prefix: str, leaves: dict[str, LeafChange]) -> None:
    """Step 3: kind, version and problems of every changed leaf (a deleted one from its old contents)."""
    deleted = [c for c in leaves.values() if c.status == "deleted"]
    old_blobs = changeset.old_blobs([prefix + c.path for c in deleted]) if deleted else {}
    for change in leaves.values():
        _describe(root, change, old_blobs.get(prefix + change.path))


def changed_leaves(
    root: Path, base: str | None = None, env: dict | None = None
) -> tuple[list[LeafChange], list[str], ChangeSet]:
    """Leaves changed on this branch (see above) -> (leaf changes sorted by path, other changed YAML files
    in the trees that still exist (misnamed leaves, for lint), the ChangeSet)."""
    root = Path(root).resolve()
    changeset, prefix = _file_changes(root, base, env)
    found = _classify(changeset, prefix)
    _map_related(root, changeset, prefix, found)
    _describe_all(root, changeset, prefix, found.leaves)
    return sorted(found.leaves.values(), key=lambda c: c.path), sorted(found.stray), changeset
