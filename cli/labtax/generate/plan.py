"""Which leaves a generate run takes, and what it would cost: data the command prints, decided here.

Leaves with lint errors are skipped whole (never half-generated) and listed with their errors; warnings
never skip a leaf. The dry-run plan counts teacher calls per leaf; a knowledge leaf without readable
documents costs none (it gets one `no_documents` rejection).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from labtax.config import Config
from labtax.lint.findings import Finding
from labtax.select import Selection
from labtax.taxonomy.leaf import Leaf
from labtax.wording import counted


@dataclass
class LeafSelection:
    leaves: list[Leaf]
    skipped: list[dict] = field(default_factory=list)  # {"leaf": path, "errors": ["line:col RULE message", ...]}
    errors: list[Finding] = field(default_factory=list)  # the findings that skipped them, for the report


def select_leaves(selection: Selection, config: Config) -> LeafSelection:
    """The selected leaves that pass lint (errors only)."""
    from labtax.lint.engine import lint

    result = lint(selection, config)
    errors = [f for f in result.findings if f.level == "error"]
    skipped: dict[str, list[str]] = {}
    for f in errors:
        skipped.setdefault(f.path, []).append(f"{f.line}:{f.col} {f.rule_id} {f.message}")
    leaves = [leaf for leaf in result.leaves if leaf.path not in skipped]
    return LeafSelection(leaves, [{"leaf": path, "errors": found} for path, found in sorted(skipped.items())], errors)


def take(chosen: LeafSelection, keep: Callable[[str], bool]) -> LeafSelection:
    """The part of a selection one shard generates (`keep` is its membership test on a leaf path): its leaves,
    its skipped leaves and their findings, so the shards' skipped lists add up to the whole run's."""
    return LeafSelection(
        [leaf for leaf in chosen.leaves if keep(leaf.path)],
        [s for s in chosen.skipped if keep(s["leaf"])],
        [f for f in chosen.errors if keep(f.path)],
    )


@dataclass(frozen=True)
class PlannedLeaf:
    leaf: Leaf
    pipeline: str
    stages: tuple[str, ...]
    calls_min: int
    calls_max: int
    documents: str | None  # knowledge leaves: "N document chunk(s) (note)" or "no documents (why)"


def plan(
    leaves: list[Leaf], num_samples: int, max_attempts: int, chunk_tokens: int, *, offline: bool
) -> list[PlannedLeaf]:
    from labtax import documents
    from labtax.generate.pipelines import pipeline_for

    rows = []
    for leaf in leaves:
        pipeline = pipeline_for(leaf)
        calls = len(pipeline.STAGES)
        low, high = num_samples * calls, num_samples * max_attempts * calls
        described = None
        if leaf.kind == "knowledge":
            chunks, note = documents.chunks_for(leaf.root, leaf.data.get("document"), chunk_tokens, offline=offline)
            described = f"{counted(len(chunks), 'document chunk')}" + (f" ({note})" if note else "")
            if not chunks:  # generation records one no_documents rejection and calls nothing for it
                low = high = 0
                described = f"no documents ({note})"
        rows.append(PlannedLeaf(leaf, pipeline.PROMPTS, tuple(pipeline.STAGES), low, high, described))
    return rows
