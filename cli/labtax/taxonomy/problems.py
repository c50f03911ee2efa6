"""LoadProblem: the one located error type for a file that cannot be read as a leaf."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LoadProblem(Exception):
    """Why a file could not be read as a leaf; `kind` names the lint rule that reports it."""

    kind: str  # syntax | duplicate-key | alias-expansion | encoding | binary | size | symlink | unreadable | empty | not-mapping
    message: str
    line: int = 1
    col: int = 1
