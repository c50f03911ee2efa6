"""The output folder across runs: every leaf folder stays in the buckets and summary, one run at a time,
files readable under the user's umask. Real fake server, real client, real `labtax` subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from labtax.generate.artifacts import OutputBusy
from labtax.generate.run import Settings, run_generation
from labtax.records.layout import LOCK_FILE
from labtax.teacher.openai_backend import OpenAITeacher

from .conftest import run_labtax
from .fake_openai import FakeOpenAI
from .test_generate import LEAVES, leaves_of, make_taxonomy, read_jsonl
from .test_generate_cli import Hold, _env, _labtax_cmd, _wait_for

RUN_FILES = (
    "knowledge.jsonl",
    "foundational.jsonl",
    "compositional.jsonl",
    "review/rejected.jsonl",
    "eval/heldout.jsonl",
    "phases/knowledge_train_msgs.jsonl",
    "phases/skills_train_msgs.jsonl",
)
A, B = LEAVES["freeform"] + "/qna.yaml", LEAVES["knowledge"] + "/qna.yaml"


def _generate(fake, leaves, out, n=2):
    async def go():
        teacher = OpenAITeacher(fake.base_url, "test-key", "fake-teacher")
        try:
            # Unvetted samples in the training files: these tests are of the files across runs, not of the gate.
            return await run_generation(leaves, teacher, out, Settings(num_samples=n, keep_unvetted=True))
        finally:
            await teacher.aclose()

    return asyncio.run(go())


def _bytes(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in RUN_FILES}


def test_a_second_leaf_keeps_the_first_in_buckets_and_summary_byte_for_byte(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform", "knowledge"))
    by_path = {leaf.path: leaf for leaf in leaves_of(root)}
    with FakeOpenAI() as fake:
        _generate(fake, [by_path[A]], tmp_path / "seq")
        summary = _generate(fake, [by_path[B]], tmp_path / "seq")
        together = _generate(fake, [by_path[A], by_path[B]], tmp_path / "both")
    seq = tmp_path / "seq"
    assert sorted(summary["leaves"]) == [A, B] and summary["run"]["leaves"] == [B]
    assert summary["totals"]["accepted"] == together["totals"]["accepted"] == 4
    assert {s["leaf"] for s in read_jsonl(seq / "compositional.jsonl")} == {A}
    assert {s["leaf"] for s in read_jsonl(seq / "knowledge.jsonl")} == {B}
    assert {h["leaf"] for h in read_jsonl(seq / "eval" / "heldout.jsonl")} == {A, B}
    assert json.loads((seq / "summary.json").read_text())["leaves"][A]["accepted"] == 2
    # What `train` reads does not depend on how the leaves were split over runs.
    assert _bytes(seq) == _bytes(tmp_path / "both")
    varying = ("seconds", "generated_at")
    assert {k: v for k, v in summary["leaves"][A].items() if k not in varying} == {
        k: v for k, v in together["leaves"][A].items() if k not in varying
    }


def test_leaf_folder_without_its_record_is_kept_with_a_note(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform", "knowledge"))
    by_path = {leaf.path: leaf for leaf in leaves_of(root)}
    out = tmp_path / "gen"
    with FakeOpenAI() as fake:
        _generate(fake, [by_path[A]], out)
        (out / LEAVES["freeform"] / "leaf.json").unlink()  # as an older labtax left it
        summary = _generate(fake, [by_path[B]], out)
    assert summary["leaves"][A]["accepted"] == 2 and "leaf.json is missing" in summary["leaves"][A]["note"]
    assert len(read_jsonl(out / "compositional.jsonl")) == 2 and summary["totals"]["accepted"] == 4


def test_cli_second_leaf_keeps_the_first_and_says_so(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform", "knowledge"))
    out = tmp_path / "gen"
    with FakeOpenAI() as fake:
        args = ["-n", "2", "--no-progress", "--keep-unvetted", "--output", str(out)]
        first = run_labtax("generate", LEAVES["freeform"], *args, cwd=root, env=_env(fake))
        assert first.returncode == 0, first.stderr
        second = run_labtax("generate", LEAVES["knowledge"], *args, cwd=root, env=_env(fake))
    assert second.returncode == 0, second.stderr
    assert f"kept from earlier runs in {out}/" in second.stdout and A in second.stdout
    assert f"wrote {out}/: 4 samples for 2 leaves" in second.stdout
    assert [s["leaf"] for s in read_jsonl(out / "compositional.jsonl")] == [A, A]
    assert sorted(json.loads((out / "summary.json").read_text())["leaves"]) == [A, B]


def test_second_run_on_the_same_output_refuses_naming_the_first(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform", "knowledge"))
    out = tmp_path / "gen"
    args = ["generate", "-n", "3", "--concurrency", "1", "--no-progress", "--keep-unvetted", "--output", str(out)]
    hold = Hold(lambda request, number: number == 2)  # the first run waits inside its second call
    with FakeOpenAI(responder=hold) as fake:
        first = subprocess.Popen(
            [*_labtax_cmd(), *args],
            cwd=root,
            env={**os.environ, **_env(fake)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_for(hold.arrived.is_set, "the first run's second call")
            second = run_labtax(*args, cwd=root, env=_env(fake))
            still_running = first.poll() is None
        finally:
            hold.release.set()
        _, first_err = first.communicate(timeout=120)
    assert second.returncode == 2 and "Traceback" not in second.stderr, second.stdout + second.stderr
    assert still_running, "the first run ended before the second was refused: the test proves nothing"
    assert "in use by another `labtax generate`" in second.stderr and f"pid {first.pid} " in second.stderr
    assert first.returncode == 0, first_err
    # The folder is exactly what the first run wrote: each leaf's samples agree with the buckets.
    for path in (A, B):
        leaf_samples = read_jsonl(out / path.rsplit("/", 1)[0] / "samples.jsonl")
        bucket = read_jsonl(out / ("knowledge.jsonl" if path == B else "compositional.jsonl"))
        assert [s for s in bucket if s["leaf"] == path] == leaf_samples and len(leaf_samples) == 3


def test_lock_is_exclusive_within_a_process_and_released_after(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    leaves = leaves_of(root)
    out = tmp_path / "gen"

    async def both(fake):
        teachers = [OpenAITeacher(fake.base_url, "k", "fake-teacher") for _ in range(2)]
        try:
            return await asyncio.gather(
                *(run_generation(leaves, t, out, Settings(num_samples=2)) for t in teachers), return_exceptions=True
            )
        finally:
            for t in teachers:
                await t.aclose()

    with FakeOpenAI(latency=0.02) as fake:
        results = asyncio.run(both(fake))
        assert sorted(type(r).__name__ for r in results) == ["OutputBusy", "dict"]
        busy = next(r for r in results if isinstance(r, OutputBusy))
        assert f"pid {os.getpid()} " in str(busy) and busy.exit_code == 2
        assert _generate(fake, leaves, out)["totals"]["accepted"] == 2  # released: the next run proceeds
    assert (out / LOCK_FILE).is_file()


@pytest.mark.parametrize("mask,expected", [(0o022, 0o644), (0o077, 0o600)])
def test_generated_files_honour_the_umask(tmp_path, mask, expected):
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    out = tmp_path / "gen"
    old = os.umask(mask)
    try:
        with FakeOpenAI() as fake:
            proc = run_labtax("generate", "-n", "1", "--no-progress", "--output", str(out), cwd=root, env=_env(fake))
    finally:
        os.umask(old)
    assert proc.returncode == 0, proc.stderr
    files = [p for p in out.rglob("*") if p.is_file()]
    assert (
        len(files) > 8
        and out / LOCK_FILE in files
        and {oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {oct(expected)}
    )


def test_symlinked_file_in_the_output_is_refused_not_replaced(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    out = tmp_path / "gen"
    out.mkdir()
    target = tmp_path / "precious.json"
    target.write_text("keep")
    (out / "summary.json").symlink_to(target)
    with FakeOpenAI() as fake:
        proc = run_labtax("generate", "-n", "1", "--no-progress", "--output", str(out), cwd=root, env=_env(fake))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert (
        "summary.json is a symlink" in proc.stderr
        and target.read_text() == "keep"
        and (out / "summary.json").is_symlink()
    )


def test_unwritable_output_is_a_clear_usage_error(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "compositional_skills").write_text("a file where a leaf folder goes")
    (tmp_path / "plain-file").write_text("")
    with FakeOpenAI() as fake:
        in_the_way = run_labtax(
            "generate", "-n", "1", "--no-progress", "--output", str(blocked), cwd=root, env=_env(fake)
        )
        under_a_file = run_labtax(
            "generate",
            "-n",
            "1",
            "--no-progress",
            "--output",
            str(tmp_path / "plain-file" / "out"),
            cwd=root,
            env=_env(fake),
        )
    for proc in (in_the_way, under_a_file):
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert (
        f"cannot write {blocked / LEAVES['freeform']}: Not a directory" in in_the_way.stderr
        and "pass another --output" in in_the_way.stderr
    )
    assert f"cannot use --output {tmp_path / 'plain-file' / 'out'}: Not a directory" in under_a_file.stderr


def test_samples_the_gate_could_not_vet_wait_in_review_unless_kept(tmp_path):
    """#26 item 5: precision first. Uncalibrated samples are not training data: they wait in
    review/unvetted.jsonl with why; --keep-unvetted puts them in the training files. With calibration on, a leaf
    the gate separates (the fake judge rejects refusals and cut answers) trains; one it cannot is held back."""
    from labtax.records.types import NOT_CALIBRATED, UNVETTED

    root = make_taxonomy(tmp_path / "tax", ("freeform", "knowledge"))
    args = ["generate", "-n", "2", "--no-progress"]
    with FakeOpenAI() as fake:
        held = run_labtax(*args, "--no-calibrate", "--output", str(tmp_path / "held"), cwd=root, env=_env(fake))
        kept = run_labtax(
            *args, "--no-calibrate", "--keep-unvetted", "--output", str(tmp_path / "kept"), cwd=root, env=_env(fake)
        )
        calibrated = run_labtax(*args, "--output", str(tmp_path / "cal"), cwd=root, env=_env(fake))
    assert held.returncode == kept.returncode == calibrated.returncode == 0, held.stderr + kept.stderr
    out = tmp_path / "held"
    assert "4 samples for 2 leaves (" in held.stdout
    assert f"; 4 of them unvetted, held back in {out}/review/unvetted.jsonl (--keep-unvetted" in held.stdout
    for bucket in ("compositional.jsonl", "knowledge.jsonl", "phases/skills_train_msgs.jsonl"):
        assert read_jsonl(out / bucket) == [], bucket
    waiting = read_jsonl(out / "review" / "unvetted.jsonl")
    assert len(waiting) == 4 and {row["held_back"] for row in waiting} == {NOT_CALIBRATED}
    assert all(row["judge"]["vetted"] == "unknown" for row in waiting)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["totals"]["held_back"] == 4 and summary["run"]["keep_unvetted"] is False
    assert {leaf["held_back"] for leaf in summary["leaves"].values()} == {2}

    kept_out = tmp_path / "kept"
    assert len(read_jsonl(kept_out / "compositional.jsonl")) == len(read_jsonl(kept_out / "knowledge.jsonl")) == 2
    assert read_jsonl(kept_out / "review" / "unvetted.jsonl") == [] and "held back" not in kept.stdout
    assert json.loads((kept_out / "summary.json").read_text())["run"]["keep_unvetted"] is True

    cal = tmp_path / "cal"
    leaves = json.loads((cal / "summary.json").read_text())["leaves"]
    assert leaves[B]["gate"]["separates"] is True and leaves[B]["held_back"] == 0
    assert [s["judge"]["vetted"] for s in read_jsonl(cal / "knowledge.jsonl")] == ["yes", "yes"]
    assert leaves[A]["gate"]["separates"] is False and leaves[A]["held_back"] == 2
    assert read_jsonl(cal / "compositional.jsonl") == []
    assert {r["held_back"].split(" (")[0] for r in read_jsonl(cal / "review" / "unvetted.jsonl")} == {UNVETTED}
