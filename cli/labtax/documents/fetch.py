"""A knowledge leaf's remote documents, fetched with real git into a cache shared by every run.

Guarantees:
- git itself does the fetching, so the user's git configuration applies as for any git tool
  (`url.<base>.insteadOf` mirrors, credential helpers, SSH keys, proxies); git never prompts (a
  missing credential is an error, not a hang), and one deadline bounds all the git calls of a repository's
  fetch (LABTAX_GIT_TIMEOUT, default 120 s): each call runs in its own process group, killed with its
  helpers when the deadline passes.
- `document.repo` comes from a pull request: only remote URLs (https, http, ssh, git, `git@host:path`) are
  fetched. A repository on this machine (a path, `file://`) only where the user allows it outside the
  repository (LABTAX_ALLOW_LOCAL_DOCUMENT_REPOS=1), and git's `<transport>::address` syntax (`ext::` runs a
  command, `fd::` reads a descriptor) never: labtax refuses it before git sees it.
- Only the pinned commit is fetched (shallow) where the server allows it; otherwise the repository's
  branches and tags are, once. A commit already in the cache is used with no network at all.
- Files are never checked out: the tree at the commit is listed and its blobs read from git's object
  store, so a symlink, `..` or a submodule in the documents repository cannot reach anything else.
- Two processes fetching the same repository take turns (a lock per repository).
- Credentials in a URL (`https://user:token@host/...`) never appear in a message.

Cache layout: `<cache root>/documents/<sha256(url)[:24]>.git`, a bare repository per URL; git's object
store is content-addressed, so a commit fetched once serves every leaf and run that pins it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from labtax.cachedir import cache_root

GIT_TIMEOUT_S = 120  # one repository's fetch, every git call of it together
GIT_TIMEOUT_ENV = "LABTAX_GIT_TIMEOUT"
ALLOW_LOCAL_ENV = "LABTAX_ALLOW_LOCAL_DOCUMENT_REPOS"
REMOTE_SCHEMES = ("https", "http", "ssh", "git", "git+ssh", "ssh+git")
_TRANSPORT = re.compile(r"[A-Za-z0-9][A-Za-z0-9+.-]*::")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_SCP = re.compile(r"(?:[^@/:]*@)?([^/:]+):")  # git's scp-like `[user@]host:path`: a colon before any slash
FULL_SHA = re.compile(r"[0-9a-f]{40}")
HEX = re.compile(r"[0-9a-fA-F]{4,40}")


class FetchError(Exception):
    """Why a repository or commit could not be had; `field` is the leaf's key to point at (repo/commit)."""

    def __init__(self, message: str, field: str = "repo", *, unreachable: bool = False):
        super().__init__(message)
        self.message = message
        self.field = field
        self.unreachable = unreachable  # no network (or no cache offline): "not checked", not a verdict


@dataclass(frozen=True)
class TreeFile:
    path: str  # inside the documents repository, POSIX
    mode: str  # git mode: 100644 / 100755 regular, 120000 symlink, 160000 submodule
    blob: str
    size: int


@dataclass(frozen=True)
class Snapshot:
    """One repository at one commit, ready to be read from the cache."""

    url: str  # as the leaf wrote it
    commit: str  # the full SHA it resolved to
    git_dir: Path
    fetched: bool  # False: served from the cache with no network

    def files(self) -> list[TreeFile]:
        out = _git(self.git_dir, "ls-tree", "-r", "-z", "--long", "--full-tree", self.commit, url=self.url)
        files = []
        for entry in filter(None, out.split("\0")):
            meta, path = entry.split("\t", 1)
            mode, _kind, blob, size = meta.split()
            files.append(TreeFile(path, mode, blob, int(size) if size.isdigit() else 0))
        return files

    def read(self, blobs: list[str]) -> dict[str, bytes]:
        """Blob contents by id, through one `git cat-file --batch`."""
        if not blobs:
            return {}
        try:
            proc = _run(
                ["git", "--git-dir", str(self.git_dir), "cat-file", "--batch"],
                _deadline(),
                "".join(f"{b}\n" for b in blobs).encode(),
            )
        except subprocess.TimeoutExpired:
            raise _timed_out("reading the documents", self.url) from None
        if proc.returncode != 0:
            raise FetchError(
                f"cannot read documents from the cache of {redact(self.url)}: {proc.stderr.decode(errors='replace').strip()}"
            )
        out, data, at = {}, proc.stdout, 0
        for blob in blobs:
            header_end = data.index(b"\n", at)
            header = data[at:header_end].split()
            size = int(header[2])
            out[blob] = data[header_end + 1 : header_end + 1 + size]
            at = header_end + 1 + size + 1
        return out


def git_timeout() -> float:
    """Seconds one repository's git calls may take together: LABTAX_GIT_TIMEOUT, else GIT_TIMEOUT_S."""
    try:
        value = float(os.environ.get(GIT_TIMEOUT_ENV) or GIT_TIMEOUT_S)
    except ValueError:
        return GIT_TIMEOUT_S
    return value if value > 0 else GIT_TIMEOUT_S


def local_allowed() -> bool:
    return os.environ.get(ALLOW_LOCAL_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def refusal(url: str) -> str | None:
    """Why labtax does not fetch `url` (None: it does). A pull request writes document.repo: a path or
    file:// URL would send any repository on this machine to the teacher and the outputs, and git's
    `<transport>::` helpers run programs; remote URLs are what a taxonomy's documents are."""
    shown = redact(url)
    if _TRANSPORT.match(url):
        return (
            f"document.repo '{shown}' uses git's '<transport>::' syntax, which runs a helper program; labtax does not "
            "fetch it: use an https:// or ssh URL"
        )
    scheme = _SCHEME.match(url)
    if scheme and scheme.group(1).lower() != "file":
        if scheme.group(1).lower() not in REMOTE_SCHEMES:
            return (
                f"document.repo '{shown}' uses the scheme '{scheme.group(1)}'; labtax does not fetch it: use one of "
                f"{', '.join(REMOTE_SCHEMES)}"
            )
        try:
            host = urlsplit(url).hostname or ""
        except ValueError:
            host = ""
        if not host or host.startswith("-"):
            return f"document.repo '{shown}' names no host (or one starting with '-'); labtax does not fetch it: fix the URL"
        return None
    scp = None if scheme else _SCP.match(url)
    if scp:
        if scp.group(1).startswith("-"):
            return f"document.repo '{shown}' names a host starting with '-' (an ssh option); labtax does not fetch it: fix the URL"
        return None
    if local_allowed():
        return None
    return (
        f"document.repo '{shown}' is a repository on this machine (a path or file:// URL); a leaf's documents come "
        "from a remote repository (https://, ssh://, git@host:path) or from this repository (./path). To read a "
        f"local repository on purpose, set {ALLOW_LOCAL_ENV}=1 where labtax runs (not in the repository), or route "
        "a remote URL to it with git's url.<base>.insteadOf"
    )


def redact(url: str) -> str:
    """The URL without any user or password it carries."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


def documents_cache() -> Path:
    return cache_root() / "documents"


def _git_dir_for(url: str) -> Path:
    return documents_cache() / f"{hashlib.sha256(url.encode()).hexdigest()[:24]}.git"


def _env() -> dict:
    # Never wait for a password on a terminal; keep the user's config (insteadOf, credential helpers, proxies).
    return {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes"),
        "LC_ALL": "C",
    }


def _run(argv: list[str], deadline: float, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """One git call in its own process group, killed with its helpers (ssh, git-remote-https, upload-pack)
    when the deadline passes or labtax is interrupted; TimeoutExpired then."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise subprocess.TimeoutExpired(argv, 0)
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(stdin, timeout=remaining)
    except BaseException:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe:
                pipe.close()
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _deadline() -> float:
    return time.monotonic() + git_timeout()


def _timed_out(what: str, url: str) -> FetchError:
    return FetchError(
        f"{what} of {redact(url)} took over {git_timeout():g} s (the limit for one repository); check the network, "
        f"use a mirror (url.<base>.insteadOf), or allow more time with {GIT_TIMEOUT_ENV}=<seconds>",
        unreachable=True,
    )


def _git(git_dir: Path, *args: str, url: str, check: bool = True, deadline: float | None = None) -> str:
    try:
        proc = _run(["git", "--git-dir", str(git_dir), *args], _deadline() if deadline is None else deadline)
    except subprocess.TimeoutExpired:
        raise _timed_out(f"git {args[0]}", url) from None
    except FileNotFoundError:
        raise FetchError("git is not installed; install git to fetch knowledge documents") from None
    stdout, stderr = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    if check and proc.returncode != 0:
        raise FetchError(_explain(stderr, url), unreachable=bool(_UNREACHABLE.search(stderr)))
    return stdout


_UNREACHABLE = re.compile(
    r"Could not resolve host|Connection refused|Failed to connect|Connection timed out|Network is unreachable|"
    r"unable to connect|Could not read from remote repository|Operation timed out|No route to host|Temporary failure in name resolution",
    re.I,
)


def _explain(stderr: str, url: str) -> str:
    text = " ".join(line.strip() for line in stderr.strip().splitlines() if line.strip())
    text = text.replace(url, redact(url))
    return f"cannot fetch {redact(url)}: {text}"


def _has_commit(git_dir: Path, ref: str, url: str) -> str | None:
    out = _git(git_dir, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", url=url, check=False).strip()
    return out if FULL_SHA.fullmatch(out) else None


class _Lock:
    """One process at a time per repository in the cache (fcntl: released if the holder dies)."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_symlink():  # never followed: a link here made labtax create its target, anywhere
            self.path.unlink()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        self.handle = os.fdopen(fd, "a")
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def snapshot(url: str, commit: str, *, offline: bool = False) -> Snapshot:
    """The repository at `url` at `commit` (full or abbreviated SHA, branch or tag), from the cache when
    it is there, else fetched. Raises FetchError with the reason and the fix."""
    refused = refusal(url)
    if refused:
        raise FetchError(refused)
    commit = commit.strip()
    git_dir = _git_dir_for(url)
    if FULL_SHA.fullmatch(commit) and git_dir.is_dir() and _has_commit(git_dir, commit, url):
        _touch(git_dir)
        return Snapshot(url, commit, git_dir, fetched=False)
    with _Lock(git_dir.with_suffix(".lock")):
        if not (git_dir / "HEAD").is_file():
            shutil.rmtree(git_dir, ignore_errors=True)  # a half-made repository from a killed run
            git_dir.mkdir(parents=True, exist_ok=True)
            _git(git_dir, "init", "--bare", "--quiet", url=url)
            _git(git_dir, "config", "remote.origin.url", url, url=url)
        found = _has_commit(git_dir, commit, url) if HEX.fullmatch(commit) else None
        if found and FULL_SHA.fullmatch(commit):  # another process fetched it while we waited
            _touch(git_dir)
            return Snapshot(url, found, git_dir, fetched=False)
        if offline:
            raise FetchError(
                f"commit {commit} of {redact(url)} is not in the cache and --offline forbids fetching; run once with the network, or point url.<base>.insteadOf at a mirror",
                "commit",
                unreachable=True,
            )
        sha = _fetch(git_dir, url, commit)
        _touch(git_dir)
        return Snapshot(url, sha, git_dir, fetched=True)


def _fetch(git_dir: Path, url: str, commit: str) -> str:
    deadline = _deadline()  # both fetches together: a hung server costs one limit, not two
    if FULL_SHA.fullmatch(commit):
        # Shallow fetch of exactly the pinned commit (servers that allow fetching a SHA: GitHub, git >= 2.x with v2).
        shallow = _git(
            git_dir,
            "fetch",
            "--quiet",
            "--no-tags",
            "--depth=1",
            "origin",
            commit,
            url=url,
            check=False,
            deadline=deadline,
        )
        del shallow
        found = _has_commit(git_dir, commit, url)
        if found:
            return found
    # Abbreviated SHAs, branch and tag names, or servers that refuse a SHA: every branch and tag, once.
    args = ["fetch", "--quiet", "--prune", "origin", "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"]
    if (git_dir / "shallow").exists():
        args.insert(2, "--unshallow")
    _git(git_dir, *args, url=url, deadline=deadline)
    for ref in (commit, f"refs/tags/{commit}", f"refs/heads/{commit}"):
        found = _has_commit(git_dir, ref, url)
        if found:
            return found
    raise FetchError(
        f"commit '{commit}' is not in {redact(url)} (no such commit, branch or tag); check document.commit: `git ls-remote {redact(url)}` lists what exists",
        "commit",
    )


def _touch(git_dir: Path) -> None:
    """Last use, for `labtax cache prune --older-than`."""
    try:
        (git_dir / "labtax-last-used").write_text(f"{time.time():.0f}\n")
    except OSError:
        pass


@dataclass(frozen=True)
class CachedRepository:
    url: str
    git_dir: Path
    size_bytes: int
    last_used: float


def _cache_entries() -> tuple[list[Path], list[Path]]:
    """The cache's `*.git` folders, and its `*.git` / `*.lock` entries that are links (labtax makes none, and
    never follows one: a link would make prune report a removal that did not happen, or write elsewhere)."""
    folders, links = [], []
    try:
        entries = sorted(os.scandir(documents_cache()), key=lambda e: e.name)
    except OSError:
        return [], []
    for entry in entries:
        if not entry.name.endswith((".git", ".lock")):
            continue
        if entry.is_symlink():
            links.append(Path(entry.path))
        elif entry.name.endswith(".git") and entry.is_dir(follow_symlinks=False):
            folders.append(Path(entry.path))
    return folders, links


def _size(folder: Path) -> int:
    """Bytes of the files in `folder`, links neither followed nor counted."""
    total = 0
    for parent, _, files in os.walk(folder):  # followlinks=False
        for name in files:
            try:
                info = os.lstat(os.path.join(parent, name))
            except OSError:
                continue
            if not os.path.islink(os.path.join(parent, name)):
                total += info.st_size
    return total


def cached_repositories() -> list[CachedRepository]:
    repos = []
    for git_dir in _cache_entries()[0]:
        url = _git(git_dir, "config", "--get", "remote.origin.url", url="", check=False).strip()
        size = _size(git_dir)
        try:
            used = float((git_dir / "labtax-last-used").read_text())
        except (OSError, ValueError):
            used = git_dir.stat().st_mtime
        repos.append(CachedRepository(url, git_dir, size, used))
    return repos


@dataclass(frozen=True)
class Pruned:
    """What prune did, exactly: repositories gone, links removed (never their targets), and what stayed."""

    removed: list[CachedRepository]
    links: list[Path]
    failed: list[tuple[Path, str]]


def prune(older_than_days: float | None = None) -> Pruned:
    """Remove cached repositories (all, or those unused for the given days), each under its lock, and any link
    in the cache (itself, never what it points to). A repository counts as removed only once it is gone."""
    cutoff = None if older_than_days is None else time.time() - older_than_days * 86400
    removed, links, failed = [], [], []
    for link in _cache_entries()[1]:
        try:
            link.unlink()
            links.append(link)
        except OSError as exc:
            failed.append((link, exc.strerror or str(exc)))
    for repo in cached_repositories():
        if cutoff is not None and repo.last_used >= cutoff:
            continue
        errors: list[str] = []

        def note(_function, path, exc_info, errors=errors) -> None:
            errors.append(f"{path}: {exc_info[1]}")

        with _Lock(repo.git_dir.with_suffix(".lock")):
            shutil.rmtree(repo.git_dir, onerror=note)
        repo.git_dir.with_suffix(".lock").unlink(missing_ok=True)
        if repo.git_dir.exists() or repo.git_dir.is_symlink():
            failed.append((repo.git_dir, errors[0] if errors else "still there"))
        else:
            removed.append(repo)
    return Pruned(removed, links, failed)
