"""A knowledge leaf's documents: where they are, fetching them, reading them, chunking them.

Two sources: InstructLab's `repo` (any URL or path git can fetch) + `commit` + `patterns`, fetched with
real git into a shared cache (fetch.py); and (labtax) documents kept in this repository: `repo` is a
path relative to the taxonomy root starting with './', and `commit` is HEAD, meaning the working tree
(local.py). Either way the matched files are read (read.py) and cut into chunks (chunk.py) whose ids
name the document, the commit and the byte range.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from labtax.documents.chunk import chunk_spans, chunk_text, count_tokens
from labtax.documents.local import (
    LOCAL_COMMIT,
    LOCAL_PREFIX,
    LocalFiles,
    glob_match,
    is_local,
    local_files,
    local_folder,
    scan_local,
)

__all__ = [
    "LOCAL_COMMIT",
    "LOCAL_PREFIX",
    "Chunk",
    "DocumentSet",
    "LocalFiles",
    "Problem",
    "chunk_spans",
    "chunk_text",
    "chunks_for",
    "count_tokens",
    "glob_match",
    "is_local",
    "local_files",
    "local_folder",
    "resolve",
    "scan_local",
]

MAX_FILES = 500  # matched files per leaf
MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_TOTAL_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True)
class Chunk:
    id: str  # "<path>@<commit>#<start>-<end>": byte range in the document's extracted text
    source: str  # the document's path (inside its repository; for in-repo documents, from the taxonomy root)
    text: str
    hash: str
    page: int | None = None  # PDF page (1-based)
    heading: str | None = None  # the nearest heading before the chunk
    repo: str = ""  # as the leaf wrote it (credentials removed)
    commit: str = ""  # the full SHA, or HEAD for in-repo documents


@dataclass(frozen=True)
class Problem:
    field: str  # the leaf's key to point at: repo | commit | patterns
    message: str
    unreachable: bool = False  # the repository could not be reached: nothing is known about the leaf
    index: int | None = None  # which pattern, for problems of one pattern

    @property
    def node(self) -> tuple:
        """Where in the leaf to point: ("document", field[, pattern index])."""
        return ("document", self.field) if self.index is None else ("document", self.field, self.index)


@dataclass
class DocumentSet:
    """What a leaf's `document:` resolved to: files (path -> bytes) and every reason something is missing."""

    repo: str
    commit: str
    files: dict[str, bytes] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    fetched: bool = False


def resolve(root: Path, document: dict, *, offline: bool = False) -> DocumentSet:
    """The leaf's documents: matched, bounded, read from the working tree (./path) or from git's cache."""
    from labtax.documents import fetch

    repo, commit = str(document.get("repo", "")), str(document.get("commit", ""))
    raw_patterns = document.get("patterns") or []
    patterns = [
        (i, p) for i, p in enumerate(raw_patterns if isinstance(raw_patterns, list) else []) if isinstance(p, str)
    ]
    if is_local(document):
        from labtax.taxonomy.files import read_bytes
        from labtax.taxonomy.problems import LoadProblem

        out = DocumentSet(repo, LOCAL_COMMIT)
        scan = scan_local(root, document)
        out.problems += [Problem("patterns", p) for p in scan.problems]
        base = root.resolve()
        if len(scan.files) > MAX_FILES:
            out.problems.append(
                Problem("patterns", f"the patterns match {len(scan.files)} files; at most {MAX_FILES} are read")
            )
        for path in scan.files[:MAX_FILES]:
            try:
                out.files[path.relative_to(base).as_posix()] = read_bytes(path, root, MAX_FILE_BYTES)
            except LoadProblem as problem:
                out.problems.append(Problem("patterns", f"{path.relative_to(base).as_posix()}: {problem.message}"))
        return out
    safe_repo = fetch.redact(repo)
    try:
        snap = fetch.snapshot(repo, commit, offline=offline)
    except fetch.FetchError as exc:
        return DocumentSet(safe_repo, commit, problems=[Problem(exc.field, exc.message, exc.unreachable)])
    out = DocumentSet(safe_repo, snap.commit, fetched=snap.fetched)
    wanted = _match(snap.files(), patterns, safe_repo, snap.commit, out.problems)
    total, kept = 0, []
    for entry in wanted:
        total += entry.size
        if total > MAX_TOTAL_BYTES:
            out.problems.append(
                Problem("patterns", f"the matched documents pass {MAX_TOTAL_BYTES} bytes in all; the rest are not read")
            )
            break
        kept.append(entry)
    blobs = snap.read([e.blob for e in kept])
    out.files = {e.path: blobs[e.blob] for e in kept}
    return out


MAX_LISTED = 20  # links, submodules and oversized files named one by one; the rest are counted


def _match(tree: list, patterns: list[tuple[int, str]], repo: str, commit: str, problems: list[Problem]) -> list:
    """The tree's files that the patterns match, in one walk: a tree names each path once, so nothing needs
    de-duplicating (comparing each file with those kept took a minute for 20,000), and files past MAX_FILES
    are counted, not kept."""
    matched = [False] * len(patterns)
    wanted: list = []
    count, listed, unlisted = 0, 0, 0
    for entry in tree:
        hits = [k for k, (_, pattern) in enumerate(patterns) if glob_match(pattern, entry.path)]
        if not hits:
            continue
        for k in hits:
            matched[k] = True
        if entry.mode == "120000":
            why = f"{entry.path} is a symlink in {repo}; documents must be plain files"
        elif entry.mode == "160000":
            why = f"{entry.path} is a submodule in {repo}; documents must be plain files"
        elif entry.size > MAX_FILE_BYTES:
            why = f"{entry.path} is {entry.size} bytes, over the limit of {MAX_FILE_BYTES}"
        else:
            count += 1
            if len(wanted) < MAX_FILES:
                wanted.append(entry)
            continue
        if listed < MAX_LISTED:
            problems.append(Problem("patterns", why, index=patterns[hits[0]][0]))
            listed += 1
        else:
            unlisted += 1
    if unlisted:
        problems.append(
            Problem("patterns", f"and {unlisted} more links, submodules or oversized files matched; none is read")
        )
    for (index, pattern), hit in zip(patterns, matched):
        if not hit:
            problems.append(
                Problem("patterns", f"pattern '{pattern}' matches no file in {repo} at {commit[:12]}", index=index)
            )
    if count > MAX_FILES:
        problems.append(Problem("patterns", f"the patterns match {count} files; at most {MAX_FILES} are read"))
    return wanted


def chunks_for(
    root: Path, document: object, max_tokens: int = 350, *, offline: bool = False
) -> tuple[list[Chunk], str | None]:
    """Chunks of a leaf's documents, and a note saying why there are none (or what was left out).

    Never raises for a leaf's documents: whatever goes wrong is this leaf's note (generate then rejects the
    leaf with it, and every other leaf of the run goes on)."""
    if not isinstance(document, dict):
        return [], "the leaf has no document section"
    try:
        return _chunks(root, document, max_tokens, offline)
    except Exception as exc:  # a bug or an unforeseen failure in fetching or reading: this leaf's, not the run's
        return [], f"the documents could not be read ({type(exc).__name__}: {exc})"


def _chunks(root: Path, document: dict, max_tokens: int, offline: bool) -> tuple[list[Chunk], str | None]:
    from labtax.documents.read import READABLE_SUFFIXES, ReadError, read

    docs = resolve(root, document, offline=offline)
    notes = [p.message for p in docs.problems]
    chunks = []
    for path, data in sorted(docs.files.items()):
        if not path.lower().endswith(READABLE_SUFFIXES):
            notes.append(f"{path}: not a Markdown, text or PDF document; not read")
            continue
        try:
            sections = read(path, data)
        except ReadError as exc:
            notes.append(f"{path}: {exc}")
            continue
        for section in sections:
            chunks += _section_chunks(docs, path, section, max_tokens)
    if not chunks and not notes:
        notes.append("no Markdown, text or PDF document matched the patterns")
    return chunks, "; ".join(notes) or None


def _section_chunks(docs: DocumentSet, path: str, section, max_tokens: int) -> list[Chunk]:
    out = []
    at, byte_at = 0, section.offset  # the byte offset advances with the chunks: no re-encoding of each prefix
    for start, end in chunk_spans(section.text, max_tokens):
        text = section.text[start:end]
        byte_start = byte_at + len(section.text[at:start].encode("utf-8"))
        byte_end = byte_start + len(text.encode("utf-8"))
        at, byte_at = end, byte_end
        heading = next((title for at, title in reversed(section.headings) if at <= start), None)
        out.append(
            Chunk(
                f"{path}@{docs.commit}#{byte_start}-{byte_end}",
                path,
                text,
                hashlib.sha256(text.encode()).hexdigest()[:16],
                section.page,
                heading,
                docs.repo,
                docs.commit,
            )
        )
    return out
