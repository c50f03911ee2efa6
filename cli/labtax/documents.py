"""Where a knowledge leaf's documents are, and reading them.

Two sources: InstructLab's remote `repo` + `commit` + `patterns`, and (labtax) documents kept in this
repository: `repo` is a path relative to the taxonomy root starting with './', and `commit` is HEAD,
meaning the working tree. In-repo documents work offline and show up in `labtax diff`.
"""

from __future__ import annotations

import glob
import hashlib
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
    chunks = []
    for path in local_files(root, document):
        if path.suffix.lower() not in TEXT_SUFFIXES:
            continue
        rel = path.relative_to(root.resolve()).as_posix()
        text = path.read_text(encoding="utf-8", errors="replace")
        for n, piece in enumerate(chunk_text(text, max_tokens)):
            chunks.append(Chunk(f"{rel}#{n}", rel, piece, hashlib.sha256(piece.encode()).hexdigest()[:16]))
    return chunks, None if chunks else "no Markdown or text document matched the patterns"
