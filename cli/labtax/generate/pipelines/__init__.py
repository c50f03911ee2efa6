"""Generation pipelines, one per leaf kind; each a short list of stages over versioned prompt files.

A pipeline is a module that satisfies `Pipeline`: its prompt file, its stages (in call order), and one
coroutine that turns a candidate index into an accepted sample or raises `Reject` with a reason. Its gate is
two parts, `vet_question` and `vet_answer` (gate/decision.py `decide` runs them on any candidate). A
`LeafJob` is what a pipeline works on: the leaf, its pipeline and stage runner, its seeds and chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from labtax.generate.seeds import LeafShape

if TYPE_CHECKING:
    from labtax.generate.gate.checks import LeafChecks
    from labtax.generate.gate.decision import Gate
    from labtax.generate.outcome import Accepted
    from labtax.generate.pipelines.prompts import PromptSet
    from labtax.generate.pipelines.runner import StageRunner
    from labtax.taxonomy.leaf import Leaf


class Pipeline(Protocol):
    __name__: str
    PROMPTS: str
    STAGES: tuple[str, ...]
    MIN_SCORE: int  # a judge's 1-3 score must reach this

    async def candidate(self, job: LeafJob, index: int) -> Accepted: ...

    def final_judge(self, job: LeafJob, item: dict, answer: str) -> tuple[str, dict]:
        """The stage and fields of the judge that has the last word on (a seed's question, `answer`):
        what the gate's calibration asks about the leaf's own seeds."""
        ...

    def judge_shots(self, job: LeafJob, stage: str) -> list[dict]:
        """The judge stage's examples: the same for every candidate of the leaf and for its calibration."""
        ...

    def relevance_turns(self, job: LeafJob, item: dict, index: int) -> tuple[str, list[str]]:
        """The answer's own user turn and those it is compared against (gate/relevance.py)."""
        ...

    async def vet_question(self, job: LeafJob, gate: Gate, candidate: dict, index: int) -> None:
        """The gate's checks on a written question (before its answer is written), through `gate`."""
        ...

    async def vet_answer(
        self, job: LeafJob, gate: Gate, candidate: dict, index: int, finish_reason: str | None
    ) -> None:
        """The gate's checks on a written answer, through `gate` (gate/decision.py `decide` runs both parts)."""
        ...


@dataclass
class LeafJob:
    leaf: Leaf
    pipeline: Pipeline
    runner: StageRunner
    prompt_items: list
    heldout: list
    chunks: list = field(default_factory=list)
    documents_note: str | None = None
    shape: LeafShape = field(default_factory=LeafShape)  # the leaf's own format: the bounds its candidates meet

    @cached_property
    def checks(self) -> LeafChecks:
        """What the cheap checks need of this leaf (gate/checks.py): its prompts' own wording that the leaf's
        material does not contain, and whether its seeds answer an input unchanged."""
        return leaf_checks(self.leaf, self.runner.prompts, [getattr(chunk, "text", "") for chunk in self.chunks])


def leaf_checks(leaf: Leaf, prompts: PromptSet, documents: Sequence[str] = ()) -> LeafChecks:
    """What the cheap checks need of a leaf (gate/checks.py LeafChecks): the word runs of its pipeline's prompts
    that its own material (task, outline, seeds, documents) lacks, and whether its seeds answer an input unchanged."""
    from labtax.generate.gate.checks import LeafChecks
    from labtax.generate.seeds import qa_items

    texts = [text for stage in prompts.stages.values() for text in (stage.system, stage.user, stage.example_user or "")]
    own = [str(leaf.data.get("task_description", "")), str(leaf.data.get("document_outline", ""))]
    own += [str(value) for item in leaf.seed_examples() for value in item.values()]
    return LeafChecks.of(texts, own + list(documents), qa_items(leaf))


def pipeline_for(leaf: Leaf) -> Pipeline:
    """freeform skills, grounded skills (seed examples with context), or knowledge."""
    from labtax.generate.pipelines import knowledge, skill_freeform, skill_grounded

    if leaf.kind == "knowledge":
        return knowledge
    if any(example.get("context") for example in leaf.seed_examples()):
        return skill_grounded
    return skill_freeform
