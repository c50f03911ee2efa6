"""Generation pipelines, one per leaf kind; each a short list of stages over versioned prompt files."""

from __future__ import annotations


def pipeline_for(leaf):
    """freeform skills, grounded skills (seed examples with context), or knowledge."""
    from labtax.generate.pipelines import knowledge, skill_freeform, skill_grounded

    if leaf.kind == "knowledge":
        return knowledge
    if any(example.get("context") for example in leaf.seed_examples()):
        return skill_grounded
    return skill_freeform
