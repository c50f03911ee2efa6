"""`labtax generate` as a user runs it: a subprocess against a real HTTP endpoint, killed and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from labtax.teacher.capacity import REFERENCE_TRIES

from .conftest import run_labtax
from .fake_openai import FakeOpenAI, good_teacher
from .test_generate import LEAVES, make_taxonomy, read_jsonl


def _env(fake) -> dict:
    return {"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-test", "LABTAX_TEACHER_MODEL": "fake-teacher"}


def _labtax_cmd() -> list[str]:
    return [str(Path(sys.executable).parent / "labtax")]


def _all_samples(out: Path) -> list[dict]:
    """Every accepted sample of the run: in the training files, or held back for review as unvetted."""
    buckets = [
        s for bucket in ("knowledge", "foundational", "compositional") for s in read_jsonl(out / f"{bucket}.jsonl")
    ]
    return buckets + read_jsonl(out / "review" / "unvetted.jsonl")


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


class Hold:
    """A responder that holds the first request `choose` picks open until `release` is set: the test signals
    while the run is inside that call (an event, never a sleep), and the run cannot finish before it."""

    def __init__(self, choose, on_request=None):
        self.choose = choose
        self.on_request = on_request
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self, request):
        with self.lock:
            self.count += 1
            number = self.count
        if self.on_request is not None:
            self.on_request(request)
        if not self.arrived.is_set() and self.choose(request, number):
            self.arrived.set()
            self.release.wait(120)
        return good_teacher(request)


def _is_second_leaf(request) -> bool:
    """A question or judge request of the unit-conversion leaf (they carry its seeds; its answer requests need not)."""
    return "kilometres" in json.dumps(request["messages"])


def _is_first_leaf(request) -> bool:
    """A request of the CEO-email leaf: every one of its prompts carries the leaf's own words."""
    return "earnings" in json.dumps(request["messages"])


def _wait_for(condition, what: str, bound: float = 120) -> None:
    """Poll a condition of the run (a file, a count) with a generous bound: an event, not a fixed sleep."""
    deadline = time.monotonic() + bound
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


POINTS = {
    # point: (leaves, what the run is doing when the signal arrives)
    "startup": (("freeform",), "after the first line, before or as the first call starts"),
    "first call": (("freeform",), "inside the first teacher call"),
    "mid-run": (("freeform",), "inside the sixth call, with five answered and cached"),
    "between leaves": (("freeform", "foundational"), "one leaf written, the other inside its first call"),
    "a leaf's last reply": (("freeform", "foundational"), "one leaf's last reply just sent: parsing, gating, writing"),
}


@pytest.mark.parametrize(
    ("point", "signum", "inherited"),
    [
        *((point, signal.SIGINT, "default") for point in POINTS),
        ("first call", signal.SIGINT, "ignored"),
        ("mid-run", signal.SIGTERM, "default"),
        ("between leaves", signal.SIGTERM, "default"),
        ("a leaf's last reply", signal.SIGTERM, "ignored"),
    ],
)
def test_a_signal_at_any_point_stops_the_run_and_a_rerun_resumes(tmp_path, point, signum, inherited):
    """SIGINT/SIGTERM stop a run with 130/143, "interrupted" and the resume hint, and the same command then
    finishes from the cache. "ignored": the run was started with SIGINT ignored, as a shell without job
    control starts background commands (`make test &` in a script): the cause of the Ctrl-C that was
    ignored in full test runs."""
    leaves, _ = POINTS[point]
    root = make_taxonomy(tmp_path / "tax", leaves)
    args = ["generate", "-n", "2", "--concurrency", "2", "--no-progress"]
    first_leaf_calls = None
    if point == "a leaf's last reply":  # how many calls the first leaf makes, from an uninterrupted run
        with FakeOpenAI() as fake:
            assert run_labtax(*args, "--output", str(tmp_path / "ref"), cwd=root, env=_env(fake)).returncode == 0
            first_leaf_calls = sum(1 for r in fake.requests if _is_first_leaf(r))
    first_leaf_seen = [0]
    last_reply = threading.Event()

    def count_first_leaf(request):
        if _is_first_leaf(request):
            first_leaf_seen[0] += 1
            if first_leaf_seen[0] == first_leaf_calls:
                last_reply.set()

    choose = {
        "startup": lambda r, n: n == 1,
        "first call": lambda r, n: n == 1,
        "mid-run": lambda r, n: n == 6,
        # Past the calls the endpoint client sends one at a time to measure the server's speed (teacher/capacity.py):
        # held among them, the call would hold the only slot and the first leaf could not finish around it.
        "between leaves": lambda r, n: _is_second_leaf(r) and n > REFERENCE_TRIES,
        "a leaf's last reply": lambda r, n: _is_second_leaf(r) and n > REFERENCE_TRIES,
    }[point]
    hold = Hold(choose, on_request=count_first_leaf)
    out = tmp_path / "out"
    written = out / LEAVES["freeform"] / "leaf.json"
    preexec = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if inherited == "ignored" else None
    with FakeOpenAI(responder=hold) as fake:
        proc = subprocess.Popen(
            [*_labtax_cmd(), *args, "--output", str(out)],
            cwd=root,
            env={**os.environ, **_env(fake), "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=preexec,
        )
        try:
            if point == "startup":
                assert proc.stdout.readline().startswith("teacher: ")
            elif point == "between leaves":
                _wait_for(written.exists, "the first leaf written")
                assert hold.arrived.is_set()
            elif point == "a leaf's last reply":
                _wait_for(last_reply.is_set, "the first leaf's last call")
            else:
                _wait_for(hold.arrived.is_set, f"call {point}")
            assert proc.poll() is None, "the run ended before the signal"
            proc.send_signal(signum)
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            hold.release.set()
            if proc.poll() is None:
                proc.kill()
        interrupted_calls = fake.calls()
        seen = (point, proc.returncode, interrupted_calls, stdout[-1500:], stderr[-1500:])
        assert proc.returncode == 128 + signum, seen
        assert "labtax: interrupted; re-run the same command to resume" in stderr and "Traceback" not in stderr, seen
        done = run_labtax(*args, "--output", str(out), cwd=root, env=_env(fake))
        assert done.returncode == 0, done.stderr
        again = run_labtax(*args, "--output", str(out), cwd=root, env=_env(fake))
        assert again.returncode == 0 and fake.calls() == interrupted_calls + _calls_made(done)  # finished: 0 calls
    summary = json.loads((out / "summary.json").read_text())
    assert summary["totals"]["accepted"] == 2 * len(leaves)
    ids = [s["id"] for s in _all_samples(out)]
    assert len(ids) == len(set(ids)) == 2 * len(leaves)


def _calls_made(proc) -> int:
    """Teacher calls a run reports on its last line ("... (N teacher calls, M from cache) ...")."""
    line = proc.stdout.strip().splitlines()[-1]
    return int(line.split("(", 1)[1].split(" teacher calls", 1)[0])


def test_samples_record_the_commit_they_were_generated_from(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "leaf"]):
        subprocess.run(["git", *args], cwd=root, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    with FakeOpenAI() as fake:
        proc = run_labtax(
            "generate", "-n", "1", "--keep-unvetted", "--output", str(tmp_path / "out"), cwd=root, env=_env(fake)
        )
    assert proc.returncode == 0, proc.stderr
    sample = read_jsonl(tmp_path / "out" / "compositional.jsonl")[0]
    assert sample["provenance"]["git_commit"] == head
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["run"]["commit"] == head
