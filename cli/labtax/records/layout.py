"""The one owner of the output folder's paths and file names (`labtax generate --output`, `labtax merge OUT`,
`labtax train --data`, `labtax comment --summary`):

    <leaf folder>/samples.jsonl, rejected.jsonl, leaf.json   per leaf (its path without qna.yaml): the truth
    knowledge.jsonl, foundational.jsonl, compositional.jsonl  training data, one bucket per kind
    knowledge_with_context.jsonl                              knowledge samples with their chunk in the prompt
    phases/<phase>_recipe.yaml, phases/<phase>_train_msgs.jsonl   the LAB phase files (labtax/mix/phases.py)
    eval/heldout.jsonl       held-out seeds (never shown to the teacher, never trained on)
    review/rejected.jsonl    rejected candidates
    review/unvetted.jsonl    accepted samples the gate could not vet, each with why (`held_back`): not training data
                             unless generate ran with --keep-unvetted
    summary.json             the run and every leaf's counts
    .cache/calls/            the call cache
    .labtax-generate.lock, labtax-shard.json, labtax-merge.json, .labtax-staging/

Training data stays apart from the rest, so `load_dataset("json", data_files="generated/*.jsonl")` reads
training rows only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LEAF_FILE = "qna.yaml"
SAMPLES = "samples.jsonl"
REJECTED = "rejected.jsonl"  # per leaf
LEAF_RECORD = "leaf.json"  # per leaf, beside samples.jsonl: its summary, held-out seeds, a hash of samples.jsonl
SUMMARY = "summary.json"
WITH_CONTEXT = "knowledge_with_context.jsonl"
PHASES_DIR = "phases"
PHASE_FILES = {"knowledge": "knowledge_train_msgs.jsonl", "skills": "skills_train_msgs.jsonl"}
RECIPES = {"knowledge": "knowledge_recipe.yaml", "skills": "skills_recipe.yaml"}
HELDOUT = "eval/heldout.jsonl"
REVIEW_REJECTED = "review/rejected.jsonl"
REVIEW_UNVETTED = "review/unvetted.jsonl"
LEGACY = ("rejected.jsonl", "heldout.jsonl")  # where an older labtax wrote review/ and eval/ files
CACHE_DIR = ".cache"
CALLS = f"{CACHE_DIR}/calls"
LOCK_FILE = ".labtax-generate.lock"
SHARD_MANIFEST = "labtax-shard.json"
MERGE_RECORD = "labtax-merge.json"
STAGING = ".labtax-staging"
TRAIN_REPORT, TRAIN_MARKDOWN = "train_report.json", "train_report.md"


def leaf_folder(leaf_path: str) -> str:
    """A leaf's folder under the output: its path without the file name."""
    return leaf_path.rsplit("/", 1)[0]


@dataclass(frozen=True)
class Layout:
    """The paths of one output folder."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def leaf_dir(self, leaf_path: str) -> Path:
        return self.root / leaf_folder(leaf_path)

    def samples(self, leaf_path: str) -> Path:
        return self.leaf_dir(leaf_path) / SAMPLES

    def leaf_record(self, leaf_path: str) -> Path:
        return self.leaf_dir(leaf_path) / LEAF_RECORD

    def bucket(self, kind: str) -> Path:
        return self.root / f"{kind}.jsonl"

    @property
    def with_context(self) -> Path:
        return self.root / WITH_CONTEXT

    @property
    def phases(self) -> Path:
        return self.root / PHASES_DIR

    def phase_file(self, phase: str) -> Path:
        return self.phases / PHASE_FILES[phase]

    def recipe(self, phase: str) -> Path:
        return self.phases / RECIPES[phase]

    @property
    def heldout(self) -> Path:
        return self.root / HELDOUT

    @property
    def rejected(self) -> Path:
        return self.root / REVIEW_REJECTED

    @property
    def unvetted(self) -> Path:
        return self.root / REVIEW_UNVETTED

    @property
    def summary(self) -> Path:
        return self.root / SUMMARY

    @property
    def cache(self) -> Path:
        return self.root / CACHE_DIR

    @property
    def calls(self) -> Path:
        return self.root / CALLS

    @property
    def lock(self) -> Path:
        return self.root / LOCK_FILE

    @property
    def shard_manifest(self) -> Path:
        return self.root / SHARD_MANIFEST

    @property
    def merge_record(self) -> Path:
        return self.root / MERGE_RECORD

    @property
    def staging(self) -> Path:
        return self.root / STAGING

    @property
    def train_report(self) -> Path:
        return self.root / TRAIN_REPORT

    @property
    def train_markdown(self) -> Path:
        return self.root / TRAIN_MARKDOWN
