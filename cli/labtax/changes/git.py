"""Changed files between a base and the working tree, with renames, via gitpython.

One job: the files that differ between the merge-base of a base ref and HEAD, and the working tree
(committed, staged, unstaged and untracked changes alike). Comparing the merge-base straight against
the working tree in one `git diff <merge-base>` gives the net change and lets git's own rename
detection see the whole range: a file added in a commit and removed again before committing is no
change, and a leaf moved with `mv` (not yet `git add`ed) is still a rename, because untracked files are
shown to git through a throwaway copy of the index (`git add --intent-to-add`), never the real one.

No remote is needed. Shallow clones are detected and refused with the exact fix instead of an answer
computed from a truncated history.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from labtax.errors import LabtaxError

if TYPE_CHECKING:
    from git import Repo

EMPTY = "empty"  # --base empty: compare against nothing, so every file is added
DEFAULT_BRANCHES = ("origin/main", "origin/master", "main", "master")
STATUS = {"A": "added", "M": "modified", "T": "modified", "U": "modified", "D": "deleted", "R": "renamed", "C": "added"}


class ShallowCloneError(LabtaxError):
    """The history in this clone is too short to find the merge-base."""


@dataclass(frozen=True)
class FileChange:
    status: str  # added | modified | renamed | deleted
    path: str  # relative to the git top level, POSIX; the new path of a rename
    old_path: str | None = None  # renames only
    similarity: int | None = None  # renames only: git's score, 100 = same content


@dataclass
class ChangeSet:
    toplevel: Path
    base: str  # the ref compared against, as asked for or chosen ("empty" for every file)
    base_reason: str  # why that ref: "--base", "$GITHUB_BASE_REF", "upstream of <branch>", "default branch", ...
    merge_base: str | None  # the commit compared against; None for `empty` or a repository without commits
    head: str | None  # None in a repository without commits
    branch: str | None  # None on a detached HEAD
    shallow: bool
    changes: list[FileChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    repo: Repo | None = field(default=None, repr=False, compare=False)
    untracked: list[str] = field(default_factory=list)  # top-level relative, for listings beyond the diff

    def old_blobs(self, paths: list[str]) -> dict[str, bytes]:
        """Contents of `paths` (top-level relative) at the merge-base, through one `git cat-file` process."""
        if self.merge_base is None or self.repo is None:
            return {}
        out = {}
        for path in paths:
            try:
                out[path] = self.repo.git.get_object_data(f"{self.merge_base}:{path}")[3]
            except Exception:
                continue
        return out


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _git(repo, *args, env: dict | None = None) -> str:
    """Run git through gitpython, returning stdout as text (raises GitCommandError on failure)."""
    raw = repo.git.execute(["git", *args], stdout_as_string=False, env=env, strip_newline_in_stdout=False)
    return _decode(raw)


def _try(repo, *args) -> str | None:
    from git.exc import GitCommandError

    try:
        return _git(repo, *args).strip() or None
    except GitCommandError:
        return None


def _commit(repo, ref: str) -> str | None:
    return _try(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")


def open_repo(start: Path):
    """The git repository containing `start`, or a LabtaxError saying what to do instead."""
    try:
        import git
    except ImportError:  # pragma: no cover - gitpython is a core dependency
        raise LabtaxError("gitpython is not installed; reinstall labtax (pip install labtax)") from None
    try:
        repo = git.Repo(start, search_parent_directories=True)
    except (git.exc.InvalidGitRepositoryError, git.exc.NoSuchPathError):
        raise LabtaxError(
            f"{start} is not inside a git repository; --changed/--base need git history (name PATHS instead, or run `git init`)"
        ) from None
    except git.exc.GitCommandNotFound:
        raise LabtaxError("the git program was not found; install git to use --changed/--base") from None
    if repo.bare or repo.working_tree_dir is None:
        raise LabtaxError(f"{repo.git_dir} is a bare repository; run labtax in a clone with a working tree")
    # Read-only (never rewrite the user's index) and paths taken literally (a file may be named `*.yaml`).
    repo.git.update_environment(GIT_OPTIONAL_LOCKS="0", GIT_LITERAL_PATHSPECS="1")
    return repo


def head_commit(start: Path) -> str | None:
    """HEAD's SHA (provenance of generated data); None outside a repository or before the first commit."""
    try:
        repo = open_repo(start)
    except LabtaxError:
        return None
    return _commit(repo, "HEAD")


def _shallow_fix(what: str, branch: str, base_missing: bool = False) -> str:
    looks_like_branch = not re.fullmatch(r"[0-9a-fA-F]{7,64}", branch) and not re.search(r"[~^:@{}\s]", branch)
    fetch_base = ""
    if base_missing and looks_like_branch:
        fetch_base = f"  git fetch origin {branch}:refs/remotes/origin/{branch}   (fetch the base branch itself)\n"
    return (
        f"{what}, and this is a shallow clone (for example CI's `fetch-depth: 1`): the history that tells which "
        "leaves changed is missing, so labtax will not guess. Fix one of:\n"
        f"{fetch_base}"
        "  git fetch --unshallow origin   (or git fetch --deepen=200 origin, repeated until labtax diff works)\n"
        "  GitHub Actions: actions/checkout with `fetch-depth: 0`\n"
        "  --base <sha>   (the commit the branch forked from, if this clone has it)"
    )


def _branch_name(ref: str) -> str:
    return ref.split("/", 1)[1] if ref.startswith("origin/") else ref


def choose_base(repo, base: str | None, branch: str | None, shallow: bool, env) -> tuple[str, str]:
    """The ref to compare against and why it was chosen (see labtax.changes.leaves)."""
    if base:
        if base == EMPTY or _commit(repo, base):
            return base, "--base"
        if _commit(repo, f"origin/{base}"):  # CI clones often have only the remote-tracking branch
            return f"origin/{base}", "--base"
        if shallow:
            raise ShallowCloneError(_shallow_fix(f"base '{base}' is not in this repository", _branch_name(base), True))
        raise LabtaxError(
            f"base '{base}' is not a branch, tag or commit here; check `git branch -a`, fetch it (git fetch origin {_branch_name(base)}), or pass --base empty for every leaf"
        )
    actions_base = env.get("GITHUB_BASE_REF")
    if actions_base:
        for candidate in (f"origin/{actions_base}", actions_base):
            if _commit(repo, candidate):
                return candidate, "$GITHUB_BASE_REF"
        fix = f"git fetch --no-tags origin {actions_base}:refs/remotes/origin/{actions_base}"
        if shallow:
            raise ShallowCloneError(
                _shallow_fix(
                    f"the pull request's base branch '{actions_base}' ($GITHUB_BASE_REF) was not fetched",
                    actions_base,
                    True,
                )
            )
        raise LabtaxError(
            f"the pull request's base branch '{actions_base}' ($GITHUB_BASE_REF) was not fetched; run `{fix}` (or use actions/checkout with fetch-depth: 0), or pass --base"
        )
    upstream = _try(repo, "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}") if branch else None
    # A branch's upstream is its base when it was made from another branch (git switch -c x origin/main);
    # when it is merely the branch's own pushed copy (origin/x for x), it says nothing about the fork point.
    if upstream and upstream.split("/", 1)[-1] != branch:
        return upstream, f"upstream of {branch}"
    for candidate in DEFAULT_BRANCHES:
        if _commit(repo, candidate):
            return candidate, "default branch"
    if shallow:
        raise ShallowCloneError(
            _shallow_fix(f"no base branch ({', '.join(DEFAULT_BRANCHES)}) is in this clone", "main", True)
        )
    raise LabtaxError(
        f"found no base branch to compare with (tried the upstream, {', '.join(DEFAULT_BRANCHES)}); pass --base REF (a branch, tag or commit), or --base empty for every leaf"
    )


def find_merge_base(repo, base: str, head: str, shallow: bool) -> str:
    from git.exc import GitCommandError

    try:
        found = _git(repo, "merge-base", base, head).split()
    except GitCommandError:
        found = []
    if not found:
        if shallow:
            raise ShallowCloneError(
                _shallow_fix(f"'{base}' and HEAD share no commit in the fetched history", _branch_name(base))
            )
        raise LabtaxError(
            f"'{base}' and HEAD share no history (unrelated branches); pass --base with the commit to compare with, or --base empty for every leaf"
        )
    merge_base = found[0]
    if shallow and merge_base not in (_commit(repo, base), head) and merge_base in _shallow_boundary(repo):
        # A boundary commit's parents are cut off: the real fork point may lie below it.
        raise ShallowCloneError(
            _shallow_fix(
                f"the merge-base of '{base}' and HEAD is at the edge of the fetched history", _branch_name(base)
            )
        )
    return merge_base


def _shallow_boundary(repo) -> set[str]:
    path = _try(repo, "rev-parse", "--git-path", "shallow")
    if not path:
        return set()
    full = Path(repo.working_tree_dir) / path if not os.path.isabs(path) else Path(path)
    try:
        return set(full.read_text().split())
    except OSError:
        return set()


def parse_name_status(raw: str) -> list[FileChange]:
    """Parse `git diff --name-status -z` output: STATUS NUL PATH NUL [NEWPATH NUL] ..."""
    tokens = raw.split("\0")
    changes, i = [], 0
    while i < len(tokens) and tokens[i]:
        code = tokens[i]
        letter = code[0]
        if letter in "RC":
            old, new = tokens[i + 1], tokens[i + 2]
            i += 3
            if letter == "R":
                changes.append(FileChange("renamed", new, old, int(code[1:] or 0)))
            else:  # a copy leaves the source in place: only the copy is new
                changes.append(FileChange("added", new))
        else:
            changes.append(FileChange(STATUS.get(letter, "modified"), tokens[i + 1]))
            i += 2
    return changes


def _start_untracked(repo, pathspec: list[str]):
    """Start listing untracked files in the background: walking the working tree is the slowest step,
    and it runs on another core while the merge-base and the diff are computed."""
    args = ["git", "ls-files", "--others", "--exclude-standard", "-z", "--", *pathspec]
    return repo.git.execute(args, as_process=True)


def _finish_untracked(lister) -> list[str]:
    raw = lister.stdout.read()
    lister.wait()
    return [p for p in _decode(raw).split("\0") if p]


def _diff_args(tree: str, pathspec: list[str]) -> list[str]:
    return [
        "diff",
        "--name-status",
        "-z",
        "--find-renames",
        "--no-ext-diff",
        "--no-color",
        "--no-relative",
        "--ignore-submodules=all",
        tree,
        "--",
        *pathspec,
    ]


def _diff_with_untracked(repo, tree: str, pathspec: list[str], untracked: list[str]) -> list[FileChange]:
    """The diff again with untracked files shown to git (intent-to-add in a throwaway copy of the index),
    so git's rename detection can pair a deleted file with its untracked new place."""
    real_index = Path(repo.working_tree_dir) / _git(repo, "rev-parse", "--git-path", "index").strip()
    with tempfile.TemporaryDirectory(prefix="labtax-index-") as tmp:
        index = Path(tmp) / "index"
        if real_index.is_file():
            shutil.copyfile(real_index, index)
        env = {"GIT_INDEX_FILE": str(index)}
        with tempfile.TemporaryFile() as names:
            names.write("\0".join(untracked).encode("utf-8", "surrogateescape"))
            names.seek(0)
            repo.git.execute(
                ["git", "add", "--intent-to-add", "--pathspec-from-file=-", "--pathspec-file-nul"],
                istream=names,
                env=env,
            )
        return parse_name_status(_git(repo, *_diff_args(tree, pathspec), env=env))


def tracked_files(repo, pathspec: list[str]) -> list[str]:
    """Files in the index under `pathspec` (top-level relative): a cheap listing, no working-tree walk."""
    return [p for p in _git(repo, "ls-files", "--cached", "-z", "--", *pathspec).split("\0") if p]


def changed_files(start: Path, base: str | None = None, pathspec: list[str] | None = None, env=None) -> ChangeSet:
    """Files changed from the merge-base of `base` (or the default base) and HEAD to the working tree.

    `pathspec` (top-level relative) limits the answer, e.g. to the taxonomy root inside a larger repo.
    """
    env = os.environ if env is None else env
    repo = open_repo(start)
    toplevel = Path(repo.working_tree_dir)
    pathspec = list(pathspec or [])
    lister = _start_untracked(repo, pathspec)
    try:
        head = _commit(repo, "HEAD")
        branch = _try(repo, "symbolic-ref", "--quiet", "--short", "HEAD")
        shallow = _try(repo, "rev-parse", "--is-shallow-repository") == "true"
        if head is None and base in (None, EMPTY):
            ref, reason, merge_base = EMPTY, "no commits yet", None
        else:
            ref, reason = choose_base(repo, base, branch, shallow, env)
            if ref == EMPTY:
                merge_base = None
            elif head is None:
                raise LabtaxError(
                    "this repository has no commits yet, so there is no merge-base with a branch; pass --base empty, or commit first"
                )
            else:
                merge_base = find_merge_base(repo, ref, head, shallow)
        tree = merge_base or _git(repo, "hash-object", "-t", "tree", os.devnull).strip()  # the empty tree
        changes = parse_name_status(_git(repo, *_diff_args(tree, pathspec)))
    except BaseException:
        lister.proc.kill()
        raise
    untracked = _finish_untracked(lister)
    if untracked and any(c.status == "deleted" for c in changes):
        changes = _diff_with_untracked(repo, tree, pathspec, untracked)
    else:  # nothing an untracked file could be the new place of: each one is simply added
        changes += [FileChange("added", path) for path in untracked]
    notes = ["shallow clone: the merge-base was found in the fetched history"] if shallow else []
    return ChangeSet(toplevel, ref, reason, merge_base, head, branch, shallow, changes, notes, repo, untracked)
