"""The relevance check (gate/relevance.py): does an answer belong to its question rather than to other seed
questions? Its arithmetic, which seeds it compares against, and the gate end to end with a judge that can
score replies (a real HTTP endpoint for the chat calls, scripted log-likelihoods for the scoring), including
the leaf's calibration of its threshold. The real model's own scores are in tests/test_embedded_teacher.py.
"""

from __future__ import annotations

import asyncio

import pytest

from labtax.generate.gate.relevance import NEUTRAL, NEUTRAL_TASK, alternatives, probability
from labtax.generate.run import Settings, run_generation
from labtax.teacher.base import Likelihood
from labtax.teacher.openai_backend import OpenAITeacher

from .fake_openai import FakeOpenAI, good_teacher, stage_of
from .test_gate import LEAF, seed_answers
from .test_generate import leaves_of, make_taxonomy, read_jsonl


def test_the_probability_is_the_odds_of_its_own_question_against_the_others():
    assert probability(-10.0, [-10.0]) == 0.5
    assert probability(-10.0, [-12.0, -12.0]) == pytest.approx(1 / (1 + pow(2.718281828, -2)), abs=1e-6)
    assert probability(-20.0, [-10.0]) < 1e-4 and probability(-10.0, [-400.0]) == 1.0
    # The others are averaged as probabilities, not log-probabilities: one that explains the answer counts.
    assert probability(-10.0, [-5.0, -100.0]) < 0.5 < probability(-10.0, [-11.0, -11.0])
    assert probability(None, [-1.0]) is None and probability(-1.0, [None]) is None
    assert probability(-1.0, [None, -1.0]) == 0.5


def test_it_never_compares_with_the_candidates_own_question_or_answer():
    seeds = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(5)]
    chosen = alternatives(seeds, "q1", "a3", index=0, count=5)
    assert [s["question"] for s in chosen] == ["q0", "q2", "q4"]
    assert [s["question"] for s in alternatives(seeds, "new", "new", index=7, count=2)] == ["q2", "q3"]
    assert alternatives([{"question": "q", "answer": "a"}], "q", "b", index=0) == []


class ScoringJudge(OpenAITeacher):
    """A judge endpoint that can also score replies; `own_margin(answer)` scripts how much likelier an answer
    is after its own user turn than after the others."""

    def __init__(self, base_url: str, own_margin, end: float = -0.5, question_margin: float = 5.0):
        super().__init__(base_url, "k", "scoring-judge")
        self.own_margin = own_margin
        self.end = end
        self.question_margin = question_margin
        self.scored: list[tuple[list, str]] = []  # answers scored (questions: self.questions)
        self.questions: list[tuple[list, str]] = []

    async def loglikelihood(self, contexts, continuation):
        if contexts[-1][0]["content"] == NEUTRAL_TASK:  # a generated question, against a request for any
            self.questions.append((contexts, continuation))
            return [Likelihood(-20.0 + self.question_margin, -30.0), Likelihood(-20.0, -30.0)]
        self.scored.append((contexts, continuation))
        own = -20.0 + self.own_margin(contexts[0][0]["content"], continuation)
        return [Likelihood(own, self.end)] + [Likelihood(-20.0, self.end)] * (len(contexts) - 1)


def generate(root, fake, out, judge, *, n=2, calibrate=False):
    async def go():
        teacher = OpenAITeacher(fake.base_url, "k", "fake-teacher")
        try:
            settings = Settings(num_samples=n, max_attempts=2, calibrate=calibrate)
            return await run_generation(leaves_of(root), teacher, out, settings, judge=judge)
        finally:
            await teacher.aclose()
            await judge.aclose()

    return asyncio.run(go())


def test_an_answer_that_fits_other_questions_as_well_is_rejected_before_the_pair_judge(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    with FakeOpenAI(good_teacher) as fake:
        judge = ScoringJudge(fake.base_url, lambda own, answer: -1.0)  # likelier after another seed's question
        summary = generate(root, fake, tmp_path / "out", judge)
        stages = [stage_of(r) for r in fake.requests]
    (leaf,) = summary["leaves"].values()
    assert leaf["accepted"] == 0 and leaf["rejected"] == {"off_topic": 4}
    assert "judge_pair" not in stages and judge.scored
    for contexts, _answer in judge.scored:  # its own question, two seed questions (never its own), the neutral one
        turns = [c[0]["content"] for c in contexts]
        assert len(turns) == 4 and turns[0] not in turns[1:] and turns[-1] == NEUTRAL
        assert all(t.strip() in seed_answers() for t in turns[1:3])
    rejected = read_jsonl(tmp_path / "out" / LEAF.rsplit("/", 1)[0] / "rejected.jsonl")
    assert {r["stage"] for r in rejected} == {"relevance"}
    assert all("P(its own among 4) = 0.269 < threshold 0.900" in r["detail"] for r in rejected)


def test_a_question_no_likelier_after_the_task_than_after_any_request_is_rejected_before_its_judge(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform", "grounded"))
    with FakeOpenAI(good_teacher) as fake:
        judge = ScoringJudge(fake.base_url, lambda own, answer: 3.0, question_margin=0.5)
        summary = generate(root, fake, tmp_path / "out", judge)
        stages = {stage_of(r) for r in fake.requests}
    assert [leaf["rejected"] for leaf in summary["leaves"].values()] == [{"off_topic": 4}] * 2
    assert not stages & {"judge_question", "answer", "judge_pair"} and not judge.scored
    for contexts, question in judge.questions:  # the leaf's task, (grounded: after its context) then any request
        own = contexts[0][0]["content"]
        assert "Write a request for this task: " in own and question and len(contexts) == 2
        # "end" was -30 (far below -10): questions are not checked for being unfinished
    about_a_text = [
        c[0][0]["content"] for c, _ in judge.questions if "must be about the text above" in c[0][0]["content"]
    ]
    assert 0 < len(about_a_text) < len(judge.questions)  # the grounded leaf's own context comes first
    assert all(len(own.split("\n\n")[0]) > 20 for own in about_a_text)


def test_an_answer_that_belongs_to_its_question_passes_records_it_and_is_cached(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    with FakeOpenAI(good_teacher) as fake:
        judge = ScoringJudge(fake.base_url, lambda own, answer: 3.0)
        summary = generate(root, fake, tmp_path / "out", judge)
        again = ScoringJudge(fake.base_url, lambda own, answer: 3.0)
        rerun = generate(root, fake, tmp_path / "out", again)
    (leaf,) = summary["leaves"].values()
    assert leaf["accepted"] == 2
    for sample in read_jsonl(tmp_path / "out" / "compositional.jsonl"):
        criteria = {c["name"]: c for c in sample["judge"]["criteria"]}
        assert criteria["relevance"]["probability"] == pytest.approx(0.952574, abs=1e-6)
        assert criteria["relevance"]["score"] == 0 and criteria["relevance"]["reason"].endswith("others: P 0.95")
    assert again.scored == [] and [v["accepted"] for v in rerun["leaves"].values()] == [2]


def test_an_answer_the_model_would_not_end_there_is_rejected_as_unfinished(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    with FakeOpenAI(good_teacher) as fake:
        judge = ScoringJudge(fake.base_url, lambda own, answer: 3.0, end=-12.5)
        summary = generate(root, fake, tmp_path / "out", judge)
        stages = [stage_of(r) for r in fake.requests]
    (leaf,) = summary["leaves"].values()
    assert leaf["accepted"] == 0 and leaf["rejected"] == {"unfinished": 4} and "judge_pair" not in stages
    rejected = read_jsonl(tmp_path / "out" / LEAF.rsplit("/", 1)[0] / "rejected.jsonl")
    assert all(r["stage"] == "checks" and "-12.5 < -10" in r["detail"] for r in rejected)


def test_the_leaf_calibrates_the_relevance_threshold_on_its_own_seeds(tmp_path):
    """Held-out seed answers fit their questions (margin +2), corrupted ones do not (-1 for another seed's
    answer); calibration chooses a threshold between them and reports a perfect ROC AUC."""
    answers = seed_answers()

    def margin(own: str, answer: str) -> float:
        if own.strip() in answers:  # calibration: a held-out seed question
            return 2.0 if answers[own.strip()] == answer.strip() else -1.0
        return 3.0  # generated pairs

    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    with FakeOpenAI(good_teacher) as fake:
        summary = generate(root, fake, tmp_path / "out", ScoringJudge(fake.base_url, margin), calibrate=True)
    (leaf,) = summary["leaves"].values()
    gate = leaf["gate"]
    assert gate["relevance_roc_auc"] == 1.0
    assert probability(-21.0, [-20.0]) < gate["relevance_threshold"] <= probability(-18.0, [-20.0])
    # The good judge says "3" to everything, so it is relevance (and the checks) that separate here.
    assert gate["separates"] is True and gate["bad_rejected"] == gate["bad_total"]
    assert leaf["accepted"] == 2


def test_a_knowledge_answer_no_better_explained_by_its_chunk_is_rejected(tmp_path):
    """Grounding: the candidate's chunk then its question, against the leaf's other passages then the same
    question; an answer its own chunk does not make likelier is rejected before the three knowledge judges."""
    root = make_taxonomy(tmp_path / "tax", ("knowledge",))
    with FakeOpenAI(good_teacher) as fake:
        judge = ScoringJudge(fake.base_url, lambda own, answer: -0.5)
        summary = generate(root, fake, tmp_path / "out", judge)
        stages = {stage_of(r) for r in fake.requests}
    (leaf,) = summary["leaves"].values()
    assert leaf["accepted"] == 0 and leaf["rejected"] == {"off_topic": 4}
    assert not stages & {"judge_faithful", "judge_relevant", "judge_standalone"}
    for contexts, _answer in judge.scored:
        turns = [c[0]["content"] for c in contexts]
        question = turns[0].rsplit("\n\n", 1)[1]
        passages = [t.rsplit("\n\n", 1)[0] for t in turns]
        assert len(turns) == 4 and turns[-1] == question  # the last: the question without any passage
        assert all(t.endswith("\n\n" + question) for t in turns[:3])
        assert len(set(passages[:3])) == 3 and all(len(p) > 40 for p in passages[:3])
