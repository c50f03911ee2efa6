"""Read what `generate`, `train` and `lint` wrote, for the comment.

The summary is required (without it there is nothing to say); everything else is optional
and read tolerantly: a missing samples file or a damaged line costs one sample, not the
comment. Paths from the summary are kept inside the generated folder, so a crafted leaf
path cannot make the bot publish some other file on the pull request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from labtax.errors import LabtaxError
from labtax.records.layout import LEAF_FILE, REVIEW_REJECTED, SAMPLES, Layout
from labtax.records.types import (
    LeafSummary,
    Rejected,
    RunSummary,
    Sample,
    read_rejected,
    read_samples,
    run_summary_from_json,
)

REJECTED = REVIEW_REJECTED  # generate's layout (labtax/records/layout.py)
OLD_REJECTED = "rejected.jsonl"  # where a labtax before review/ wrote it


@dataclass
class CommentInputs:
    """Everything the renderer needs, generation's records typed by labtax.records (read and checked once:
    the renderer trusts their types); samples are fetched per leaf through the callables."""

    summary: RunSummary
    generated_dir: Path
    lint: dict | None = None
    train: dict | None = None
    problems: list[str] = field(default_factory=list)

    def leaves(self) -> dict[str, LeafSummary]:
        return self.summary["leaves"]

    def samples(self, leaf: str, limit: int) -> list[Sample]:
        folder = leaf_dir(self.generated_dir, leaf)
        if folder is None:
            return []
        path = inside(self.generated_dir, folder / SAMPLES)
        return read_samples(path, limit) if path else []

    def rejected(self, leaves, per_leaf: int) -> dict[str, list[Rejected]]:
        """Up to `per_leaf` rejected candidates for each leaf, from generated/review/rejected.jsonl (or the
        top-level rejected.jsonl of a folder an older labtax wrote)."""
        wanted = set(leaves)
        found: dict[str, list[Rejected]] = {leaf: [] for leaf in wanted}
        path = Layout(self.generated_dir).rejected
        if not path.exists() and not path.is_symlink():
            path = self.generated_dir / OLD_REJECTED
        for record in read_rejected(inside(self.generated_dir, path)):
            leaf = record["leaf"]
            if leaf in wanted and len(found[leaf]) < per_leaf:
                found[leaf].append(record)
        return found


def load_inputs(summary_path: Path, train_path: Path | None = None, lint_path: Path | None = None) -> CommentInputs:
    data = load_json(summary_path, "summary", "run `labtax generate` first, or pass --summary generated/summary.json")
    try:
        summary = run_summary_from_json(data)
    except ValueError as exc:
        raise LabtaxError(f"{summary_path}: {exc} (is it a labtax summary.json?)") from None
    train = (
        load_json(train_path, "training report", "pass the train_report.json that `labtax train` wrote")
        if train_path
        else None
    )
    lint = (
        load_json(lint_path, "lint report", "write it with `labtax lint --format json --output FILE`")
        if lint_path
        else None
    )
    return CommentInputs(summary=summary, generated_dir=Path(summary_path).resolve().parent, lint=lint, train=train)


def load_json(path: Path, what: str, fix: str) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LabtaxError(f"{what} not found: {path}: {fix}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LabtaxError(f"cannot read {what} {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise LabtaxError(f"{what} {path} is not valid JSON (line {exc.lineno}, column {exc.colno}): {fix}") from None
    if not isinstance(data, dict):
        raise LabtaxError(f"{what} {path} must hold a JSON object: {fix}")
    return data


def leaf_dir(generated_dir: Path, leaf: str) -> Path | None:
    """generated/<leaf path without qna.yaml>/, or None when the path would leave generated/."""
    if not isinstance(leaf, str) or not leaf or "\x00" in leaf:
        return None
    rel = Path(leaf)
    if rel.name == LEAF_FILE:
        rel = rel.parent
    return inside(generated_dir, Path(generated_dir) / rel)


def inside(generated_dir: Path, path: Path) -> Path | None:
    """`path` resolved (symlinks too), or None when it lands outside the generated folder.

    The comment workflow may render an artifact an untrusted run produced; a link in it must not
    make the bot publish a file from the machine that posts.
    """
    base = Path(generated_dir).resolve()
    target = Path(path).resolve()
    return target if target == base or base in target.parents else None
