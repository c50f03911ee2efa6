"""The quality gate end to end against a real HTTP teacher: cheap checks reject before any judge call, and
the per-leaf calibration tells a judge that separates good from bad from one that says "3" to everything."""

from __future__ import annotations

import json

import yaml

from labtax.records.types import GateVerdict

from .conftest import REPO
from .fake_openai import FakeOpenAI, Reply, good_teacher, stage_of
from .test_generate import generate, make_taxonomy, read_jsonl

LEAF = "compositional_skills/writing/business/ceo_earnings_email/qna.yaml"


def seed_answers() -> dict[str, str]:
    data = yaml.safe_load((REPO / LEAF).read_text())
    return {e["question"].strip(): e["answer"].strip() for e in data["seed_examples"]}


def test_a_refusing_teacher_is_rejected_by_the_cheap_checks_without_judge_calls(tmp_path):
    def refuses(request: dict) -> Reply:
        if stage_of(request) == "answer":
            return Reply("I'm sorry, but I can't help with that request.")
        return good_teacher(request)

    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    with FakeOpenAI(refuses) as fake:
        summary = generate(root, fake, tmp_path / "out", n=2, max_attempts=2, calibrate=True)
        pair_judge_calls = sum(
            1 for r in fake.requests if stage_of(r) == "judge_pair" and "can't help" in json.dumps(r)
        )
    (leaf,) = summary["leaves"].values()
    assert leaf["accepted"] == 0 and leaf["rejected"] == {"refusal": 4}
    assert leaf["rejected_by_stage"] == {"checks": 4} and pair_judge_calls == 0


def test_a_judge_that_always_says_3_cannot_vet_and_the_run_says_so(tmp_path):
    def always_3(request: dict) -> Reply:
        return Reply("3") if stage_of(request).startswith("judge") else good_teacher(request)

    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    with FakeOpenAI(always_3) as fake:
        summary = generate(root, fake, tmp_path / "out", n=2, calibrate=True, keep_unvetted=False)
    (leaf,) = summary["leaves"].values()
    gate = leaf["gate"]
    assert gate["good_accepted"] == gate["good_total"] >= 1 and gate["separates"] is False
    assert gate["bad_rejected"] < gate["bad_total"]  # only what the cheap checks catch
    assert leaf["note"] is None  # the verdict is the gate's field, never the note's prose
    assert (
        GateVerdict.from_json(gate)
        .warning()
        .startswith("the judge could not separate good from bad on this leaf's own examples")
    )
    assert read_jsonl(tmp_path / "out" / "compositional.jsonl") == []  # precision first: not training data
    held = read_jsonl(tmp_path / "out" / "review" / "unvetted.jsonl")
    assert len(held) == 2 and all(s["judge"]["vetted"] == "no" for s in held)
    assert all(s["held_back"] == GateVerdict.from_json(gate).warning() for s in held)


def test_a_judge_that_knows_the_answers_separates_and_vets(tmp_path):
    answers = seed_answers()

    def discerning(request: dict) -> Reply:
        if stage_of(request) != "judge_pair":
            return good_teacher(request)
        user = request["messages"][-1]["content"]
        question = next((q for q in answers if q in user), None)
        if question is None:  # a generated pair: the fake teacher's own answers are fine
            return Reply("3" if "A clear reply about" in user else "1")
        return Reply("3" if answers[question] in user else "1")

    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    with FakeOpenAI(discerning) as fake:
        summary = generate(root, fake, tmp_path / "out", n=2, calibrate=True, keep_unvetted=False)
    (leaf,) = summary["leaves"].values()
    assert leaf["gate"]["separates"] is True and leaf["gate"]["bad_rejected"] == leaf["gate"]["bad_total"]
    assert leaf["note"] is None
    assert all(s["judge"]["vetted"] == "yes" for s in read_jsonl(tmp_path / "out" / "compositional.jsonl"))


def test_real_seed_answers_pass_the_cheap_checks(corpus):
    """The checks must not reject good data: every seed answer of this repository's leaves and of InstructLab's
    taxonomy (written by people, the gate's notion of good) passes them."""
    from labtax.generate import seeds
    from labtax.generate.gate.checks import check_answer
    from labtax.taxonomy.loader import load_leaf

    flagged, total = [], 0
    for root in (REPO, corpus / "head"):
        for path in sorted(root.glob("*_skills/**/qna.yaml")) + sorted(root.glob("knowledge/**/qna.yaml")):
            leaf = load_leaf(root, path.relative_to(root).as_posix())
            for item in seeds.qa_items(leaf):
                total += 1
                failure = check_answer(item["question"], item["answer"], "stop")
                if failure:
                    flagged.append((leaf.path, failure.reason, failure.detail))
    assert total > 150 and flagged == []


NEW_CHECKS = {"prompt_leak", "copies_input", "non_answer", "wrong_arithmetic"}


def test_real_seeds_pass_the_checks_made_for_the_teachers_failures(corpus):
    """The checks written for what the teacher gets wrong (a leaked prompt, a copied input, an answer about
    answering, a sum that does not hold, a task cut mid-sentence) reject no seed people wrote: this repository's,
    InstructLab's taxonomy and its 120 historical files, each leaf's seeds checked as its own candidates."""
    from labtax.generate import seeds
    from labtax.generate.gate.checks import check_answer, check_question
    from labtax.generate.pipelines import leaf_checks, pipeline_for, prompts
    from labtax.taxonomy.loader import LoadProblem, load_leaf

    roots = [REPO, corpus / "head", *sorted((corpus / "history").iterdir())]
    flagged, total = [], 0
    for root in roots:
        for path in sorted(root.rglob("qna.yaml")):
            try:
                leaf = load_leaf(root, path.relative_to(root).as_posix())
            except LoadProblem:  # a history file that is not YAML at all: nothing to check
                continue
            checks = leaf_checks(leaf, prompts.load(pipeline_for(leaf).PROMPTS))
            for item in seeds.qa_items(leaf):
                total += 1
                q, a = str(item["question"]), str(item["answer"])
                context = "" if leaf.kind == "knowledge" else str(item.get("context") or "")
                failure = check_question(q, checks, context) or check_answer(q, a, "stop", context=context, leaf=checks)
                if failure and (failure.reason in NEW_CHECKS or "task" in failure.detail):
                    flagged.append((str(path), failure.reason, failure.detail))
    assert total > 1000 and flagged == []
