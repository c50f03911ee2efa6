"""`labtax vet`: generation's gate on rows made anywhere, against the fake OpenAI-compatible teacher."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import run_labtax
from .fake_openai import FakeOpenAI, Reply, good_teacher, stage_of
from .test_generate import LEAVES, make_taxonomy, read_jsonl
from .test_records import validator

FREEFORM = f"{LEAVES['freeform']}/qna.yaml"
GROUNDED = f"{LEAVES['grounded']}/qna.yaml"
KNOWLEDGE = f"{LEAVES['knowledge']}/qna.yaml"


def _env(fake) -> dict:
    return {"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-test", "LABTAX_TEACHER_MODEL": "fake-teacher"}


def chat(question: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def write_rows(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def outputs(out: Path) -> dict:
    return {
        "accepted": read_jsonl(out / "accepted.jsonl"),
        "rejected": read_jsonl(out / "rejected.jsonl"),
        "not_vetted": read_jsonl(out / "not_vetted.jsonl"),
        "summary": json.loads((out / "summary.json").read_text()),
    }


def assert_schemas(found: dict) -> None:
    for sample in found["accepted"]:
        assert not list(validator("sample").iter_errors(sample)), sample
    for rejected in found["rejected"]:
        assert not list(validator("rejected").iter_errors(rejected)), rejected


ANSWER = "A clear reply about the quarter, with the numbers the board asked for and what comes next."


def test_minimal_rows_end_each_in_exactly_one_place_with_located_reasons(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform", "grounded", "knowledge"))
    rows = write_rows(
        tmp_path / "rows.jsonl",
        [
            {"leaf": FREEFORM, "messages": chat("Write an email announcing our results to the staff.", ANSWER)},
            {"leaf": FREEFORM, "messages": chat("Write an email to the board.", "I'm sorry, I can't help with that.")},
            {"leaf": "compositional_skills/nowhere/qna.yaml", "messages": chat("Hi?", ANSWER)},
            "this is not json",
            {"leaf": GROUNDED, "messages": chat("List the action items.", "- Ana sends the draft by Friday.")},
            {
                "leaf": LEAVES["grounded"],  # the leaf's folder names it too
                "context": "Notes: Ana will send the draft by Friday. Ben books the room.",
                "messages": chat("List the action items.", "- Ana sends the draft by Friday.\n- Ben books the room."),
            },
            {
                "leaf": KNOWLEDGE,
                "chunk": "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
                "messages": chat("What does photosynthesis make?", "Sugar and oxygen, from light, water and CO2."),
            },
            {"leaf": KNOWLEDGE, "messages": chat("What does photosynthesis make?", "Sugar and oxygen.")},
            {"leaf": FREEFORM, "messages": "hello"},
        ],
    )
    out = tmp_path / "vetted"
    with FakeOpenAI() as fake:
        proc = run_labtax("vet", rows, "--output", out, "--no-calibrate", cwd=root, env=_env(fake))
    assert proc.returncode == 1, proc.stdout + proc.stderr  # some rows could not be vetted
    found = outputs(out)
    assert_schemas(found)
    summary = found["summary"]
    assert summary["rows"] == 9 == summary["accepted"] + summary["rejected"] + summary["not_vetted"]
    assert sorted(s["messages"][-1]["content"][:5] for s in found["accepted"]) == ["- Ana", "A cle", "Sugar"]
    assert [(r["leaf"], r["stage"], r["reason"]) for r in found["rejected"]] == [(FREEFORM, "checks", "refusal")]
    not_vetted = {r["line"]: r for r in found["not_vetted"]}
    assert sorted(not_vetted) == [3, 4, 5, 8, 9]
    assert not_vetted[3]["reason"] == "unknown_leaf" and not_vetted[4]["reason"] == "malformed_row"
    assert all(r["reason"] == "malformed_row" for line, r in not_vetted.items() if line != 3)
    for line, record in not_vetted.items():
        assert record["message"].startswith(f"{rows}:{line}: ") and "fix:" in record["message"], record
    assert "context" in not_vetted[5]["message"] and '"chunk"' in not_vetted[8]["message"]
    assert summary["leaves"][FREEFORM]["rejected"] == {"refusal": 1}
    assert summary["not_vetted_by_reason"] == {"malformed_row": 4, "unknown_leaf": 1}
    assert f"{rows}:3: no leaf" in proc.stderr


def test_a_judge_that_says_1_rejects_and_the_rejection_keeps_the_candidate(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("grounded",))
    context = "Notes: Ana will send the draft by Friday. Ben books the room."
    rows = write_rows(
        tmp_path / "rows.jsonl",
        [{"leaf": GROUNDED, "context": context, "messages": chat("List the action items.", "- Ana: the draft.")}],
    )

    def harsh(request):
        return Reply("1") if stage_of(request).startswith("judge") else good_teacher(request)

    out = tmp_path / "vetted"
    with FakeOpenAI(responder=harsh) as fake:
        proc = run_labtax("vet", rows, "--output", out, "--no-calibrate", cwd=root, env=_env(fake))
    assert proc.returncode == 0, proc.stdout + proc.stderr  # every row was vetted: rejected is a verdict
    found = outputs(out)
    assert_schemas(found)
    assert found["accepted"] == [] and found["not_vetted"] == []
    (rejected,) = found["rejected"]
    assert (rejected["stage"], rejected["reason"]) == ("judge_question", "judge_score")
    assert rejected["candidate"]["context"] == context and rejected["candidate"]["question"] == "List the action items."
    assert found["summary"]["leaves"][GROUNDED]["rejected"] == {"judge_score": 1}


def test_re_vetting_generates_own_samples_accepts_them_all(tmp_path):
    """The same gate: what generation accepted, vet accepts (same fake teacher, calibration on in both)."""
    root = make_taxonomy(tmp_path / "tax", ("freeform", "grounded", "knowledge"))
    generated = tmp_path / "generated"
    with FakeOpenAI() as fake:
        proc = run_labtax(
            "generate", "--no-progress", "-n", "2", "--keep-unvetted", "--output", generated, cwd=root, env=_env(fake)
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        files = [generated / f"{b}.jsonl" for b in ("compositional", "knowledge", "knowledge_with_context")]
        samples = [s for f in files for s in read_jsonl(f)]
        assert len(samples) == 8
        out = tmp_path / "vetted"
        proc = run_labtax("vet", *files, "--output", out, cwd=root, env=_env(fake))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = outputs(out)
    assert_schemas(found)
    assert found["rejected"] == [] and found["not_vetted"] == []

    def key(sample: dict) -> str:  # knowledge samples are in two files (with and without their chunk), one id
        return json.dumps([sample["id"], sample["messages"], sample["provenance"], sample["judge"]["criteria"]])

    assert sorted(map(key, found["accepted"])) == sorted(map(key, samples))
    assert found["summary"]["accepted"] == 8


def test_no_files_is_a_usage_error(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    assert run_labtax("vet", cwd=root).returncode == 2
    assert run_labtax("vet", tmp_path / "missing.jsonl", cwd=root).returncode == 2
