"""`labtax generate` against a real OpenAI-compatible HTTP server on 127.0.0.1, through the real client."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from labtax.config import load_config
from labtax.generate.run import Settings, run_generation
from labtax.lint.engine import lint
from labtax.select import select
from labtax.teacher.openai_backend import OpenAITeacher

from .conftest import REPO
from .fake_openai import FakeOpenAI, Reply, good_teacher, stage_of

LEAVES = {
    "freeform": "compositional_skills/writing/business/ceo_earnings_email",
    "grounded": "compositional_skills/extraction/meeting_notes/action_items",
    "foundational": "foundational_skills/reasoning/unit_conversion",
    "knowledge": "knowledge/science/biology/photosynthesis",
}


def make_taxonomy(root: Path, kinds=tuple(LEAVES)) -> Path:
    for kind in kinds:
        shutil.copytree(REPO / LEAVES[kind], root / LEAVES[kind])
    shutil.copytree(REPO / "documents" / "photosynthesis", root / "documents" / "photosynthesis")
    return root


def leaves_of(root: Path):
    result = lint(select(root), load_config(root))
    assert result.errors == 0, result.findings
    return result.leaves


def generate(root, fake, out, n=3, concurrency=8, max_attempts=4, calibrate=False, keep_unvetted=True, **teacher_kw):
    """One run on the fake teacher. The gate's calibration is off and unvetted samples go to the training files
    (--keep-unvetted) unless a test is about them: these tests are of the files, not of the fake's judgement."""

    async def go():
        teacher = OpenAITeacher(fake.base_url, "test-key", "fake-teacher", concurrency=concurrency, **teacher_kw)
        try:
            return await run_generation(
                leaves_of(root),
                teacher,
                out,
                Settings(num_samples=n, max_attempts=max_attempts, calibrate=calibrate, keep_unvetted=keep_unvetted),
            )
        finally:
            await teacher.aclose()

    return asyncio.run(go())


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_every_stage_runs_and_outputs_are_complete(tmp_path):
    root = make_taxonomy(tmp_path / "tax")
    out = tmp_path / "gen"
    with FakeOpenAI() as fake:
        summary = generate(root, fake, out, n=3)
        stages = {stage_of(r) for r in fake.requests}
    assert stages == {"question", "judge_question", "answer", "judge_pair", "context", "qa", "judge_knowledge"}
    assert summary["totals"]["accepted"] == 12 and summary["totals"]["requested"] == 12
    for path, leaf in summary["leaves"].items():
        assert leaf["accepted"] == 3 and leaf["teacher_calls"] > 0 and leaf["note"] is None
        samples = read_jsonl(out / path.rsplit("/", 1)[0] / "samples.jsonl")
        assert len(samples) == 3 and len({s["id"] for s in samples}) == 3
        for sample in samples:
            assert [m["role"] for m in sample["messages"]] == ["system", "user", "assistant"]
            prov = sample["provenance"]
            assert (
                prov["leaf"] == path
                and prov["teacher_model"] == "fake-teacher"
                and prov["prompt_version"].rsplit("@", 1)[-1] in ("v6", "v7")  # knowledge prompts are at v7
            )
            assert prov["seed_hash"] and "git_commit" in prov
            assert sample["judge"]["criteria"] and all(c["score"] >= 2 for c in sample["judge"]["criteria"])
    knowledge = read_jsonl(out / "knowledge.jsonl")
    assert len(knowledge) == 3 and all(
        s["provenance"]["chunk"].startswith("documents/photosynthesis/") for s in knowledge
    )
    assert len(read_jsonl(out / "compositional.jsonl")) == 6 and len(read_jsonl(out / "foundational.jsonl")) == 3
    heldout = read_jsonl(out / "eval" / "heldout.jsonl")
    assert {h["leaf"] for h in heldout} == set(summary["leaves"])
    # grounded skills train on context + question
    grounded = [s for s in read_jsonl(out / "compositional.jsonl") if "action_items" in s["leaf"]]
    assert all(s["provenance"]["context"] in s["messages"][1]["content"] for s in grounded)


def test_rerun_makes_zero_teacher_calls(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform", "knowledge"))
    with FakeOpenAI() as fake:
        first = generate(root, fake, tmp_path / "gen", n=2)
        calls = fake.calls()
        samples_before = read_jsonl(tmp_path / "gen" / "knowledge.jsonl")
        second = generate(root, fake, tmp_path / "gen", n=2)
        assert fake.calls() == calls
    assert (
        second["totals"]["teacher_calls"] == 0 and second["totals"]["cached_calls"] == first["totals"]["teacher_calls"]
    )
    assert read_jsonl(tmp_path / "gen" / "knowledge.jsonl") == samples_before


def _rejecting(stage_name, reply):
    def responder(request):
        return reply(request) if stage_of(request) == stage_name else good_teacher(request)

    return responder


@pytest.mark.parametrize(
    "kind,stage,reply,reason",
    [
        ("freeform", "question", lambda r: Reply("?"), "parse_failure"),
        ("freeform", "judge_question", lambda r: Reply("1"), "judge_score"),
        ("freeform", "judge_question", lambda r: Reply("I think it is fine."), "parse_failure"),
        ("freeform", "answer", lambda r: Reply("Answer: it goes on and on", finish_reason="length"), "truncated"),
        ("freeform", "judge_pair", lambda r: Reply("1"), "judge_score"),
        (
            "freeform",
            "question",
            lambda r: Reply("Write the same email about the same quarter every time please."),
            "duplicate",
        ),
        ("knowledge", "qa", lambda r: Reply("Photosynthesis is nice."), "parse_failure"),
        ("knowledge", "judge_knowledge", lambda r: Reply("1"), "judge_score"),
        ("knowledge", "judge_knowledge", lambda r: Reply("Yes, 15 out of 10."), "parse_failure"),
        ("grounded", "context", lambda r: Reply("Too short."), "parse_failure"),
    ],
)
def test_every_rejection_is_recorded_with_stage_and_reason(tmp_path, kind, stage, reply, reason):
    root = make_taxonomy(tmp_path / "tax", (kind,))
    out = tmp_path / "gen"
    with FakeOpenAI(responder=_rejecting(stage, reply)) as fake:
        summary = generate(root, fake, out, n=2, max_attempts=2)
    leaf = next(iter(summary["leaves"].values()))
    rejected = read_jsonl(out / "review" / "rejected.jsonl")
    assert leaf["rejected"].get(reason, 0) >= 1
    assert sum(leaf["rejected"].values()) == len(rejected) == leaf["generated"] - leaf["accepted"]
    assert all(r["reason"] and r["stage"] and "detail" in r for r in rejected)
    if reason == "duplicate":
        assert leaf["accepted"] == 1  # the first copy is kept, the rest are near-duplicates
    else:
        assert leaf["accepted"] == 0
    assert leaf["generated"] == 4 and "accepted" in leaf["note"]  # budget: 2 samples x 2 attempts, with a note


def test_transient_failures_are_retried(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    with FakeOpenAI() as fake:
        fake.faults = [
            Reply(status=429, headers={"Retry-After": "0"}),
            Reply(status=500),
            Reply(raw_body=b"{not json at all"),
            Reply(status=503),
        ]  # (a slow answer is not asked again: --timeout is the call's one deadline, test_endpoint_failures.py)
        summary = generate(root, fake, tmp_path / "gen", n=2, concurrency=1, max_retries=5)
        assert not fake.faults
    leaf = next(iter(summary["leaves"].values()))
    assert leaf["accepted"] == 2 and leaf["rejected"] == {}


def test_persistent_failure_rejects_candidates_but_run_goes_on(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform", "knowledge"))

    def responder(request):
        return Reply(status=500) if stage_of(request) == "qa" else good_teacher(request)

    with FakeOpenAI(responder=responder) as fake:
        summary = generate(root, fake, tmp_path / "gen", n=2, max_attempts=1, max_retries=1)
    by_kind = {leaf["kind"]: leaf for leaf in summary["leaves"].values()}
    assert by_kind["knowledge"]["rejected"] == {"teacher_error": 2}
    assert by_kind["compositional"]["accepted"] == 2
    assert "HTTP 500" in read_jsonl(tmp_path / "gen" / "review" / "rejected.jsonl")[0]["detail"]


def test_remote_documents_give_a_clear_note_and_no_calls(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("knowledge",))
    qna = root / LEAVES["knowledge"] / "qna.yaml"
    qna.write_text(
        qna.read_text()
        .replace("repo: ./documents/photosynthesis", "repo: https://example.invalid/docs.git")
        .replace("commit: HEAD", "commit: " + "a" * 40)
    )
    with FakeOpenAI() as fake:
        summary = generate(root, fake, tmp_path / "gen", n=2, max_attempts=1)
        assert fake.calls() == 0
    leaf = next(iter(summary["leaves"].values()))
    # One rejection per leaf (not per attempt), no teacher call, and the reason.
    assert leaf["rejected"] == {"no_documents": 1} and "cannot fetch https://example.invalid/docs.git" in leaf["note"]
