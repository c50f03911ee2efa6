"""`labtax generate` as a user runs it: a subprocess against a real HTTP endpoint, killed and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .conftest import run_labtax
from .fake_openai import FakeOpenAI
from .test_generate import make_taxonomy, read_jsonl


def _env(fake) -> dict:
    return {"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-test", "LABTAX_TEACHER_MODEL": "fake-teacher"}


def _labtax_cmd() -> list[str]:
    return [str(Path(sys.executable).parent / "labtax")]


def _all_samples(out: Path) -> list[dict]:
    return [s for bucket in ("knowledge", "foundational", "compositional") for s in read_jsonl(out / f"{bucket}.jsonl")]


def test_dry_run_prints_plan_without_calls(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform", "knowledge"))
    with FakeOpenAI() as fake:
        proc = run_labtax("generate", "--dry-run", "-n", "3", cwd=root, env=_env(fake))
        assert fake.calls() == 0
    assert proc.returncode == 0, proc.stderr
    assert "plan: 2 leaves, 3 samples each" in proc.stdout
    assert "knowledge/science/biology/photosynthesis/qna.yaml: knowledge, pipeline knowledge" in proc.stdout
    assert "document chunks" in proc.stdout and "nothing was called" in proc.stdout
    assert not (root / "generated").exists()


def test_first_line_names_the_teacher_and_outputs_land(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    with FakeOpenAI() as fake:
        proc = run_labtax("generate", "-n", "2", "--output", str(tmp_path / "out"), cwd=root, env=_env(fake))
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("teacher: openai fake-teacher") and "OPENAI_BASE_URL" in first
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["run"]["teacher"] == "openai" and summary["totals"]["accepted"] == 2


def test_invalid_leaf_is_skipped_with_located_error(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform", "foundational"))
    bad = root / "foundational_skills/reasoning/unit_conversion/qna.yaml"
    bad.write_text(bad.read_text().replace("created_by:", "creator:"))
    with FakeOpenAI() as fake:
        proc = run_labtax("generate", "-n", "1", "--output", str(tmp_path / "out"), cwd=root, env=_env(fake))
    assert proc.returncode == 1
    assert "unit_conversion/qna.yaml:" in proc.stderr and "LT001" in proc.stderr and "Traceback" not in proc.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert list(summary["leaves"]) == ["compositional_skills/writing/business/ceo_earnings_email/qna.yaml"]
    # Never narrowed silently: the skipped leaf and its errors are in summary.json and in the PR comment.
    (skipped,) = summary["run"]["skipped"]
    assert skipped["leaf"] == "foundational_skills/reasoning/unit_conversion/qna.yaml"
    assert any("LT001" in error and "created_by" in error for error in skipped["errors"])
    comment = run_labtax("comment", "--summary", str(tmp_path / "out" / "summary.json"), cwd=root)
    assert "1 leaf not generated** because of lint errors" in comment.stdout and "unit&#95;conversion" in comment.stdout
    assert "labtax: ❌ needs changes" in comment.stdout


def test_kill_9_mid_run_then_resume_loses_nothing_and_duplicates_nothing(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform", "grounded", "knowledge"))
    args = ["generate", "-n", "4", "--concurrency", "2", "--no-progress"]
    with FakeOpenAI(latency=0.05) as fake:
        # Reference: the same run, uninterrupted, into its own output (own cache).
        ref = run_labtax(*args, "--output", str(tmp_path / "ref"), cwd=root, env=_env(fake))
        assert ref.returncode == 0, ref.stderr
        full_calls = fake.calls()
        reference_ids = sorted(s["id"] for s in _all_samples(tmp_path / "ref"))

        out = tmp_path / "out"
        proc = subprocess.Popen(
            [*_labtax_cmd(), *args, "--output", str(out)],
            cwd=root,
            env={**os.environ, **_env(fake)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while fake.calls() < full_calls + full_calls // 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        calls_before_kill = fake.calls() - full_calls
        assert 0 < calls_before_kill < full_calls and not (out / "summary.json").exists()

        resumed = run_labtax(*args, "--output", str(out), cwd=root, env=_env(fake))
        assert resumed.returncode == 0, resumed.stderr
        resumed_calls = fake.calls() - full_calls - calls_before_kill
        # The resumed run made only the calls the killed one had not finished (in-flight ones at most twice).
        assert resumed_calls <= full_calls - calls_before_kill + 2

        again = run_labtax(*args, "--output", str(out), cwd=root, env=_env(fake))
        assert again.returncode == 0
        assert fake.calls() == full_calls + calls_before_kill + resumed_calls  # zero calls on a re-run
    ids = sorted(s["id"] for s in _all_samples(out))
    assert ids == reference_ids and len(set(ids)) == len(ids) == 12
    summary = json.loads((out / "summary.json").read_text())
    assert summary["totals"]["teacher_calls"] == 0 and summary["totals"]["accepted"] == 12


def test_ctrl_c_stops_cleanly_and_resumes(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    args = ["generate", "-n", "6", "--concurrency", "1", "--no-progress", "--output", str(tmp_path / "out")]
    with FakeOpenAI(latency=0.05) as fake:
        proc = subprocess.Popen(
            [*_labtax_cmd(), *args],
            cwd=root,
            env={**os.environ, **_env(fake)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while fake.calls() < 5 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        calls_at_signal = fake.calls()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
        # On failure, say whether the run was interrupted at all: a run that finished before the signal (every
        # call failing, say) exits 0 too.
        seen = (proc.returncode, calls_at_signal, fake.calls(), stdout[-1500:], stderr[-1500:])
        assert proc.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr, seen
        done = run_labtax(*args, cwd=root, env=_env(fake))
    assert done.returncode == 0
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["totals"]["accepted"] == 6


def test_samples_record_the_commit_they_were_generated_from(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "leaf"]):
        subprocess.run(["git", *args], cwd=root, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    with FakeOpenAI() as fake:
        proc = run_labtax("generate", "-n", "1", "--output", str(tmp_path / "out"), cwd=root, env=_env(fake))
    assert proc.returncode == 0, proc.stderr
    sample = read_jsonl(tmp_path / "out" / "compositional.jsonl")[0]
    assert sample["provenance"]["git_commit"] == head
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["run"]["commit"] == head
