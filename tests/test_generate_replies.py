"""Hostile teacher replies (lone surrogates, bodies far over max_tokens) cost one candidate, never the run.

Real fake server on 127.0.0.1, real `openai` client, and the real `labtax` CLI where the item is the CLI.
"""

from __future__ import annotations

import json

from .conftest import run_labtax
from .fake_openai import FakeOpenAI, Reply, good_teacher, stage_of
from .test_generate import generate, make_taxonomy, read_jsonl
from .test_generate_cli import _env

SURROGATE = "Answer: a reply with a lone surrogate \ud800 in it."  # valid JSON on the wire: "\ud800"
HUGE = "Answer: " + "lantern " * 650_000  # about 5 MB, finish_reason "stop", for max_tokens <= 512


def _bad_answer_for_seed_0(content: str):
    def responder(request):
        if stage_of(request) == "answer" and request.get("seed") == 0:
            return Reply(content)
        return good_teacher(request)

    return responder


def _check_one_rejection(out, summary, reason):
    leaf = next(iter(summary["leaves"].values()))
    assert leaf["accepted"] == 2 and leaf["rejected"] == {reason: 1}
    rejected = read_jsonl(out / "review" / "rejected.jsonl")
    assert [(r["stage"], r["reason"], r["sample_index"]) for r in rejected] == [("answer", reason, 0)]
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["totals"]["accepted"] == 2
    return rejected[0]


def test_lone_surrogate_rejects_one_candidate_and_the_run_completes(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    out = tmp_path / "gen"
    with FakeOpenAI(responder=_bad_answer_for_seed_0(SURROGATE)) as fake:
        summary = generate(root, fake, out, n=2, max_attempts=2)
        record = _check_one_rejection(out, summary, "invalid_text")
        assert "not valid Unicode" in record["detail"] and "\\ud800" in record["candidate"]["raw"]
        assert all("\ud800" not in s["messages"][2]["content"] for s in read_jsonl(out / "compositional.jsonl"))
        # The bad reply is not cached: a re-run asks for it again (one call) and rejects it again.
        calls = fake.calls()
        again = generate(root, fake, out, n=2, max_attempts=2)
        assert fake.calls() == calls + 1 and again["totals"]["rejected"] == {"invalid_text": 1}


def _generate(root, out, fake):
    """Two samples, two candidates each: room for the one bad reply and a good one beside it."""
    return run_labtax(
        "generate", "-n", "2", "--max-attempts", "2", "--no-progress", "--output", str(out), cwd=root, env=_env(fake)
    )


def test_lone_surrogate_through_the_cli_writes_the_summary(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    out = tmp_path / "gen"
    with FakeOpenAI(responder=_bad_answer_for_seed_0(SURROGATE)) as fake:
        proc = _generate(root, out, fake)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "invalid_text 1" in proc.stdout
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    _check_one_rejection(out, summary, "invalid_text")


def test_reply_far_over_max_tokens_is_rejected_as_oversized(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    out = tmp_path / "gen"
    with FakeOpenAI(responder=_bad_answer_for_seed_0(HUGE)) as fake:
        summary = generate(root, fake, out, n=2, max_attempts=2)
        answer_request = next(r for r in fake.requests if stage_of(r) == "answer" and r.get("seed") == 0)
    record = _check_one_rejection(out, summary, "oversized")
    assert (
        f"max_tokens {answer_request['max_tokens']}" in record["detail"]
        and f"{len(HUGE):,} characters" in record["detail"]
    )
    assert len(record["candidate"]) < 3000  # a preview, not 5 MB
    assert all(len(s["messages"][2]["content"]) < 10_000 for s in read_jsonl(out / "compositional.jsonl"))
    assert (out / "review" / "rejected.jsonl").stat().st_size < 10_000
    assert sum(p.stat().st_size for p in (out / ".cache").rglob("*.json")) < 1_000_000  # not cached either


def test_deeply_nested_json_reply_rejects_one_candidate(tmp_path):
    """A body nested 100,000 deep is a RecursionError in json.loads: a malformed reply, never the run's end."""
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    out = tmp_path / "gen"
    nested = b'{"choices": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"

    def responder(request):
        if stage_of(request) == "answer" and request.get("seed") == 0:
            return Reply(raw_body=nested)
        return good_teacher(request)

    with FakeOpenAI(responder=responder) as fake:
        proc = _generate(root, out, fake)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "RecursionError" not in proc.stderr + proc.stdout
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    record = _check_one_rejection(out, summary, "teacher_error")
    assert "malformed response" in record["detail"] and "nested" in record["detail"]
