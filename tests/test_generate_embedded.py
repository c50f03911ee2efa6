"""One real end-to-end generation on the embedded SmolLM2-135M teacher (no endpoint, no network).

Exact text is not asserted (it is a sampling model); the properties are: the run states its teacher,
every candidate ends accepted or rejected with a known stage and reason, accepted samples were parsed
and judged, and they carry full provenance. A re-run replays everything from the cache.
"""

from __future__ import annotations

import json

from .conftest import run_labtax
from .test_generate import make_taxonomy, read_jsonl

KNOWN_REASONS = {"parse_failure", "truncated", "judge_score", "duplicate", "teacher_error", "no_documents"}
KNOWN_REASONS |= {
    "oversized",
    "invalid_text",
    "refusal",
    "repetition",
    "restates_question",
    "wrong_language",
    "too_long",
    "prompt_leak",  # what the teacher itself gets wrong (gate/checks.py)
    "copies_input",
    "non_answer",
    "wrong_arithmetic",
    "unfinished",  # the gate's likelihood checks (gate/relevance.py) and self-consistency (gate/consistency.py)
    "off_topic",
    "inconsistent",
}


def test_embedded_teacher_generates_judged_samples_with_provenance(tmp_path, monkeypatch, model_cache):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("LABTAX_TEACHER_MODEL", raising=False)
    root = make_taxonomy(tmp_path / "tax", ("foundational",))
    out = tmp_path / "out"
    proc = run_labtax("generate", "-n", "2", "--max-attempts", "2", "--output", str(out), cwd=root, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith("teacher: embedded SmolLM2-135M-Instruct")

    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["teacher"] == "embedded"
    ((path, leaf),) = summary["leaves"].items()
    assert leaf["teacher_calls"] > 0 and leaf["tokens"] > 0
    rejected = read_jsonl(out / "review" / "rejected.jsonl")
    assert leaf["generated"] == leaf["accepted"] + len(rejected) == leaf["accepted"] + sum(leaf["rejected"].values())
    assert all(r["reason"] in KNOWN_REASONS and r["stage"] for r in rejected)
    if leaf["accepted"] < 2:
        assert leaf["note"]  # a shortfall is said, not hidden
    # The model's output got past parsing at least once: some candidate reached a judge or was accepted.
    assert leaf["accepted"] or any(
        r["stage"].startswith("judge")
        or r["stage"] in ("dedup", "checks", "relevance", "question_relevance", "consistency")
        for r in rejected
    )
    assert leaf["gate"]["good_total"] >= 1 and leaf["gate"]["separates"] in (True, False)  # calibrated on its seeds
    trained, held = read_jsonl(out / "foundational.jsonl"), read_jsonl(out / "review" / "unvetted.jsonl")
    assert len(trained) + len(held) == leaf["accepted"] and leaf["held_back"] == len(held)
    assert all(s["judge"]["vetted"] == "yes" for s in trained) and all(s["held_back"] for s in held)
    assert "note: the embedded SmolLM2-135M teacher is a smoke test" in proc.stdout
    for sample in trained + held:
        assert sample["leaf"] == path and sample["kind"] == "foundational"
        user, assistant = sample["messages"][1]["content"], sample["messages"][2]["content"]
        assert user.strip() and assistant.strip() and not user.lower().startswith(("task:", "question:"))
        for c in sample["judge"]["criteria"]:  # a judge's score passed; a measured criterion (score 0) has its P
            assert isinstance(c["score"], int) and (c["score"] >= 2 or (c["score"] == 0 and c["probability"] > 0))
        assert sample["judge"]["vetted"] == ("yes" if leaf["gate"]["separates"] else "no")
        prov = sample["provenance"]
        assert prov["teacher"] == "embedded" and prov["teacher_model"] == "SmolLM2-135M-Instruct"
        assert prov["prompt_version"].startswith("skill-freeform@v") and prov["seed_hash"] and prov["leaf_hash"]

    again = run_labtax("generate", "-n", "2", "--max-attempts", "2", "--output", str(out), cwd=root, timeout=900)
    assert again.returncode == 0
    assert json.loads((out / "summary.json").read_text())["totals"]["teacher_calls"] == 0
