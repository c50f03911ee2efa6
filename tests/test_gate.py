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
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    with FakeOpenAI(good_teacher) as fake:  # every judge stage answers "3"
        summary = generate(root, fake, tmp_path / "out", n=2, calibrate=True)
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
    samples = read_jsonl(tmp_path / "out" / "compositional.jsonl")
    assert samples and all(s["judge"]["vetted"] == "no" for s in samples)


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
        summary = generate(root, fake, tmp_path / "out", n=2, calibrate=True)
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
