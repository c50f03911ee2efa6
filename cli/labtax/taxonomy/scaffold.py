"""Scaffolding a leaf (`labtax new`): the qna.yaml template every kind starts from, an empty attribution.txt,
and the checks that the place is one a leaf may go.

Every value a contributor must write is left as an empty string with a TODO comment beside it. An empty
string fails the schema (minLength 1) at its own line, so `labtax lint` and the pre-commit hook point at
each field still to fill in, and an unfilled scaffold can never be committed by accident.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from labtax.errors import LabtaxError
from labtax.taxonomy.kinds import KIND_TREE, LEAF_FILE, TREES

KINDS = ("knowledge", "compositional", "foundational")
SKILL_EXAMPLES = 5  # the v3 schemas' minItems for seed_examples
KNOWLEDGE_EXAMPLES = 5
KNOWLEDGE_QAS = 3  # minItems for questions_and_answers per context

HEADER = """\
# A {kind} leaf (qna.yaml version 3), scaffolded by `labtax new`.
# Replace every "" marked TODO with real text; `labtax lint {folder}` rejects this file until you have.
# Multi-line text: write `answer: |` and the text indented on the following lines.
# attribution.txt beside this file starts empty: write its lines (Title of work, Link to work, Revision,
# License of the work, Creator names); lint rejects the leaf while it is empty.
"""


def _q(field: str, todo: str, indent: int, bullet: bool = False) -> str:
    lead = " " * indent + ("- " if bullet else "")
    return f'{lead}{field}: ""  # TODO: {todo}\n'


def skill_template(kind: str, folder: str, created_by: str) -> str:
    text = HEADER.format(kind=f"{kind} skill", folder=folder)
    text += "version: 3\n"
    text += f"created_by: {_scalar(created_by)}\n" if created_by else _q("created_by", "your GitHub username", 0)
    text += _q("task_description", "what this skill teaches, in one or two precise sentences (the teacher reads it)", 0)
    text += "seed_examples:\n"
    for i in range(1, SKILL_EXAMPLES + 1):
        if i == 1:
            text += "  # Optional per example: `context:` grounding text the answer must use (grounded skills).\n"
        text += _q("question", f"question or instruction {i} of {SKILL_EXAMPLES}", 2, bullet=True)
        text += _q("answer", f"the answer you want the model to give to question {i}", 4)
    return text


def knowledge_template(folder: str, created_by: str) -> str:
    text = HEADER.format(kind="knowledge", folder=folder)
    text += "version: 3\n"
    text += f"created_by: {_scalar(created_by)}\n" if created_by else _q("created_by", "your GitHub username", 0)
    text += _q("domain", "the knowledge domain, brief, like a textbook chapter title", 0)
    text += _q("document_outline", "a brief summary of the documents", 0)
    text += "seed_examples:\n"
    for i in range(1, KNOWLEDGE_EXAMPLES + 1):
        text += _q(
            "context",
            f"passage {i} of {KNOWLEDGE_EXAMPLES}, copied from the documents (at most 500 words)",
            2,
            bullet=True,
        )
        text += "    questions_and_answers:\n"
        for j in range(1, KNOWLEDGE_QAS + 1):
            text += _q("question", f"question {j} answerable from passage {i}", 6, bullet=True)
            text += _q("answer", f"its answer, taken from passage {i}", 8)
    text += "document:\n"
    text += _q(
        "repo", "git URL of the documents repository, or ./path/to/folder for documents kept in this repository", 2
    )
    text += _q("commit", "full 40-character commit SHA of that repository (HEAD for ./path documents)", 2)
    text += "  patterns:\n"
    text += '    - ""  # TODO: glob of the document files, relative to the repository root, e.g. "*.md"\n'
    return text


# attribution.txt starts empty: lint (LT018) rejects an empty one, so it cannot be committed unfilled.
# A template of TODO lines would pass LT018 (it only checks "not empty"); these are the lines to write.
ATTRIBUTION_FIELDS = (
    ("Title of work", "the title of the source of the seed examples, or a name for your original work"),
    ("Link to work", "a URL of the source, or 'original content written for this taxonomy'"),
    ("Revision", "the version or commit of the source, if any"),
    ("License of the work", "e.g. CC-BY-4.0 or Apache-2.0; you must be allowed to contribute it"),
    ("Creator names", "the authors of the source"),
)


def _scalar(value: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    import json

    return json.dumps(value, ensure_ascii=False)


def leaf_parts(kind: str, path: str) -> list[str]:
    """The folders of the leaf below its tree; a leading tree name is accepted if it is the kind's own."""
    if path.startswith(("/", "\\", "~")) or PureWindowsPath(path).drive:
        raise LabtaxError(
            f"PATH '{path}' is absolute; give the folders below {KIND_TREE[kind]}/, e.g. `labtax new {kind} writing/poetry/haiku`"
        )
    raw = path.replace("\\", "/").strip("/")
    parts = [p for p in PurePosixPath(raw).parts if p not in ("", ".")] if raw else []
    if parts and parts[0] in TREES:
        if TREES[parts[0]] != kind:
            raise LabtaxError(
                f"PATH starts with '{parts[0]}/' but KIND is {kind}; use `labtax new {TREES[parts[0]]} ...` or drop the tree name"
            )
        parts = parts[1:]
    if not parts:
        raise LabtaxError(
            f"PATH names no folder below {KIND_TREE[kind]}/; e.g. `labtax new {kind} writing/poetry/haiku`"
        )
    if ".." in parts:
        raise LabtaxError(f"PATH '{path}' contains '..'; give the folders below {KIND_TREE[kind]}/")
    return parts


def check_folder_names(parts: list[str], pattern: str) -> None:
    regex = re.compile(pattern)
    for part in parts:
        if not regex.fullmatch(part):
            suggestion = re.sub(r"[^a-z0-9]+", "_", part.lower()).strip("_") or "my_leaf"
            raise LabtaxError(
                f"folder name '{part}' is not lowercase snake_case (a-z, 0-9, single underscores); use '{suggestion}'"
            )


def check_real_folders(root: Path, folder: Path) -> None:
    """Refuse to create anything through a symlinked folder: it could write outside the repository, and a
    leaf behind a link is not where the tree says it is."""
    for part in [folder, *folder.parents]:
        if part == root:
            return
        if part.is_symlink():
            raise LabtaxError(
                f"{part.relative_to(root)} is a symlink; labtax new creates leaves only in real folders of the taxonomy"
            )


@dataclass(frozen=True)
class Scaffolded:
    folder: str  # the leaf's folder, relative to the taxonomy root
    text: str  # the qna.yaml written

    @property
    def todos(self) -> int:
        return self.text.count("# TODO")


def scaffold(root: Path, kind: str, path: str, created_by: str, pattern: str) -> Scaffolded:
    """Write the leaf's qna.yaml and an empty attribution.txt under `root` (never over a file, never through a
    symlinked folder, never above or inside another leaf); `pattern`: the folder names lint accepts (LT013)."""
    from labtax.fileio import write_text_atomic

    parts = leaf_parts(kind, path)
    check_folder_names(parts, pattern)
    folder_rel = "/".join([KIND_TREE[kind], *parts])
    folder = root / folder_rel
    qna, attribution = folder / LEAF_FILE, folder / "attribution.txt"
    existing = [p for p in (qna, attribution) if p.exists() or p.is_symlink()]
    if existing:
        names = ", ".join(str(p.relative_to(root)) for p in existing)
        verb = "exists" if len(existing) == 1 else "exist"
        raise LabtaxError(f"{names} already {verb}; refusing to overwrite. Edit it, or choose another PATH")
    if folder.exists() and not folder.is_dir():
        raise LabtaxError(f"{folder_rel} exists and is not a folder; choose another PATH")
    check_real_folders(root, folder)
    above = [p for p in folder.parents if p != root and root in p.parents and (p / LEAF_FILE).is_file()]
    if above:
        raise LabtaxError(
            f"{above[0].relative_to(root)} is already a leaf; a leaf cannot hold another leaf. Choose a PATH beside it"
        )
    below = next((Path(d) for d, _, names in os.walk(folder) if LEAF_FILE in names), None)
    if below is not None:
        raise LabtaxError(
            f"{below.relative_to(root)} is a leaf inside {folder_rel}; a leaf cannot hold another leaf. Choose a PATH beside it"
        )

    text = (
        knowledge_template(folder_rel, created_by)
        if kind == "knowledge"
        else skill_template(kind, folder_rel, created_by)
    )
    write_text_atomic(qna, text)
    write_text_atomic(attribution, "")
    return Scaffolded(folder_rel, text)
