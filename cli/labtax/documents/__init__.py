"""Where a knowledge leaf's documents are, and reading them.

Two sources: InstructLab's remote `repo` + `commit` + `patterns`, and (labtax) documents kept in this
repository: `repo` is a path relative to the taxonomy root starting with './', and `commit` is HEAD,
meaning the working tree. In-repo documents work offline and show up in `labtax diff`.
"""

from __future__ import annotations

import hashlib
import os
import re
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
    """Does `rel` match a glob pattern as glob.glob(pattern, recursive=True) would find it (hidden names
    only by a pattern part that starts with '.')?"""
    import fnmatch

    def match(pat: list[str], parts: list[str]) -> bool:
        if not pat:
            return not parts
        if pat[0] == "**":
            return any(match(pat[1:], parts[i:]) for i in range(len(parts) + 1) if not any(p.startswith(".") for p in parts[:i]))
        if not parts or (parts[0].startswith(".") and not pat[0].startswith(".")):
            return False
        return fnmatch.fnmatchcase(parts[0], pat[0]) and match(pat[1:], parts[1:])

    return match([p for p in pattern.split("/") if p not in ("", ".")], rel.split("/"))


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
            problems.append(f"more than {MAX_WALK_ENTRIES} files and folders under '{document['repo']}'; stopped looking (narrow the folder)")
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
                problems.append(f"document '{rel}' is not read: it links outside the documents folder (to {real.relative_to(root)})")
            else:
                found.append(path)
    return LocalFiles(sorted(set(found)), problems)


def local_files(root: Path, document: dict) -> list[Path]:
    """Files matched by the patterns inside an in-repo document folder, sorted, never outside the root."""
    return scan_local(root, document).files


# --- reading and chunking ---------------------------------------------------------------------------

TEXT_SUFFIXES = (".md", ".markdown", ".txt", ".rst")
_TOKEN = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class Chunk:
    id: str  # "<file relative to the taxonomy root>#<n>"
    source: str
    text: str
    hash: str


def count_tokens(text: str) -> int:
    """Word-piece estimate (words and punctuation): close to BPE counts for English prose, and free."""
    return len(_TOKEN.findall(text))


def _blocks(text: str) -> list[str]:
    """Markdown split into paragraphs; a heading sticks to the paragraph after it."""
    blocks, pending = [], ""
    for para in re.split(r"\n\s*\n", text):
        para = para.strip()
        if not para:
            continue
        if para.startswith("#") and "\n" not in para:
            pending = f"{pending}\n{para}".strip()
            continue
        blocks.append(f"{pending}\n{para}".strip() if pending else para)
        pending = ""
    if pending:
        blocks.append(pending)
    return blocks


def _pack(pieces: list[str], max_tokens: int, joiner: str) -> list[str]:
    """Greedily join consecutive pieces while the result stays within max_tokens."""
    out, current = [], ""
    for piece in pieces:
        candidate = f"{current}{joiner}{piece}".strip()
        if current and count_tokens(candidate) > max_tokens:
            out.append(current)
            current = piece
        else:
            current = candidate
    if current:
        out.append(current)
    return out


def chunk_text(text: str, max_tokens: int) -> list[str]:
    """Pack paragraphs into chunks of at most max_tokens, splitting only paragraphs that are too long."""
    pieces = []
    for block in _blocks(text):
        if count_tokens(block) > max_tokens:
            pieces += _pack(re.split(r"(?<=[.!?])\s+", block), max_tokens, " ")
        else:
            pieces.append(block)
    return _pack(pieces, max_tokens, "\n\n")


def chunks_for(root: Path, document: dict, max_tokens: int = 350) -> tuple[list[Chunk], str | None]:
    """Chunks of a leaf's in-repo documents, and a note when there are none (remote or missing)."""
    if not isinstance(document, dict):
        return [], "the leaf has no document section"
    if not is_local(document):
        return [], f"documents in remote repository {document.get('repo')} are not fetched (offline); keep documents in this repository (repo: ./path, commit: HEAD)"
    from labtax.taxonomy.files import read_bytes
    from labtax.taxonomy.problems import LoadProblem

    chunks = []
    for path in local_files(root, document):
        if path.suffix.lower() not in TEXT_SUFFIXES:
            continue
        rel = path.relative_to(root.resolve()).as_posix()
        try:
            text = read_bytes(path, root, MAX_DOCUMENT_BYTES).decode("utf-8", errors="replace")
        except LoadProblem:
            continue  # lint (LT017) reports it; generation grounds in the documents it can read
        for n, piece in enumerate(chunk_text(text, max_tokens)):
            chunks.append(Chunk(f"{rel}#{n}", rel, piece, hashlib.sha256(piece.encode()).hexdigest()[:16]))
    return chunks, None if chunks else "no Markdown or text document matched the patterns"
