"""Refactoring keeps behaviour byte-identical: a fixed run on the fake teacher (tests/fake_openai.py) writes the
same bytes as when the hashes below were recorded (issue #25, recorded before the records/Layout refactor).

The run covers every pipeline (freeform, grounded, foundational, knowledge), judge rejections, the gate's
calibration (the fake's miniature judge, fake_openai.judge_score, separates some leaves; the others' samples
wait in review/unvetted.jsonl) and a run without it, two shards merged,
`labtax mix`, the training report's Markdown and `labtax comment` over all of it. Times (seconds, started,
generated_at) are set to fixed values before hashing; everything else counts to the byte.

When a change to the outputs is intended, run `LABTAX_REPIN=1 pytest tests/test_pinned_outputs.py`, then
read the diff of tests/pinned_outputs.json and say in the commit why each hash moved.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from .conftest import REPO, run_labtax
from .fake_openai import FakeOpenAI, Reply, good_teacher, stage_of
from .test_generate import make_taxonomy

PINNED = REPO / "tests" / "pinned_outputs.json"
TIMES = {
    "seconds": 1.0,
    "started": "2025-01-01T00:00:00+00:00",
    "generated_at": "2025-01-01T00:00:00+00:00",
    "merged": "2025-01-01T00:00:00+00:00",
}


def _responder(request: dict):
    """The good teacher, except that one pair judgement in three (by a hash of the request, so independent of
    the order calls arrive in) says 1: rejections land in every leaf's review file."""
    if stage_of(request) == "judge_pair":
        digest = hashlib.sha256(json.dumps(request["messages"]).encode()).digest()
        if digest[0] % 3 == 0:
            return Reply("1")
    return good_teacher(request)


def _env(fake) -> dict:
    return {"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-test", "LABTAX_TEACHER_MODEL": "fake-teacher"}


def _fixed_times(value):
    if isinstance(value, dict):
        return {k: TIMES[k] if k in TIMES and v is not None else _fixed_times(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fixed_times(v) for v in value]
    return value


def _normalise_json(path: Path) -> None:
    path.write_text(json.dumps(_fixed_times(json.loads(path.read_text())), indent=2, ensure_ascii=False) + "\n")


def _normalise_text(text: str, *paths: Path) -> str:
    for path in paths:
        text = text.replace(str(path), "<" + path.name + ">")
    return re.sub(r"\b\d+\.\ds\b", "N.Ns", text)


def _digest(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def _folder_digests(folder: Path, prefix: str) -> dict[str, str]:
    """sha256 of every file under `folder` (times fixed in the JSON records; the call cache by its keys alone;
    the lock and shard manifest, which name the process and the host, left out)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if not path.is_file() or rel.startswith(".labtax-generate") or rel == "labtax-shard.json":
            continue
        if rel.startswith(".cache/"):
            continue
        if path.name in ("summary.json", "leaf.json", "labtax-merge.json"):
            _normalise_json(path)
            path.write_text(_normalise_text(path.read_text(), folder.parent))
        out[f"{prefix}/{rel}"] = _digest(path.read_bytes())
    keys = sorted(p.stem for p in (folder / ".cache").rglob("*.json"))
    out[f"{prefix}/.cache keys"] = _digest("\n".join(keys))
    return out


TRAIN_REPORT = {
    "verdict": "did not learn",
    "verdict_line": "did not learn: knowledge 2.5 -> 2.6 over 1 leaf/leaves, 3 question(s)",
    "model": "SmolLM2-135M-Instruct",
    "heldout_examples": 3,
    "seconds": 105.0,
    "settings": {"lora_r": 8, "batch_size": 4, "lr": 0.0002, "threads": 1},
    "phases": [
        {
            "name": "knowledge",
            "samples": 4,
            "replay": 0,
            "steps": 40,
            "seconds": 61.0,
            "train_loss_first": 2.91,
            "train_loss_last": 1.12,
            "probe_loss_before": 2.5,
            "probe_loss_after": 2.6,
            "verdict": "did not learn",
            "heldout": {
                "knowledge/science/biology/photosynthesis/qna.yaml": {
                    "loss_before": 2.5,
                    "loss_after": 2.6,
                    "ppl_before": 12.2,
                    "ppl_after": 13.5,
                    "role": "trained",
                }
            },
        }
    ],
    "examples": [
        {
            "leaf": "knowledge/science/biology/photosynthesis/qna.yaml",
            "question": "What is photosynthesis?",
            "reference": "Light to sugar.",
            "before": "A planet.",
            "after": "Light to sugar, in chloroplasts.",
        }
    ],
}


def _outputs(tmp_path: Path) -> dict[str, str]:
    from labtax.train.report import markdown

    root = make_taxonomy(tmp_path / "tax")
    got: dict[str, str] = {}
    with FakeOpenAI(responder=_responder) as fake:
        for name, extra in (("plain", ["--no-calibrate"]), ("calibrated", [])):
            out = tmp_path / name
            proc = run_labtax("generate", "-n", "2", "--output", str(out), *extra, cwd=root, env=_env(fake))
            assert proc.returncode == 0, proc.stdout + proc.stderr
            got[f"{name}/stdout"] = _digest(_normalise_text(proc.stdout, out))
            got.update(_folder_digests(out, name))
        shards = []
        for index in (1, 2):
            folder = tmp_path / f"shard-{index}"
            proc = run_labtax(
                "generate", "-n", "2", "--no-calibrate", "--output", str(folder), "--shard", f"{index}/2",
                cwd=root, env=_env(fake),
            )  # fmt: skip
            assert proc.returncode == 0, proc.stdout + proc.stderr
            shards.append(str(folder))
    merged = tmp_path / "merged"
    proc = run_labtax("merge", str(merged), *shards, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got.update(_folder_digests(merged, "merged"))
    mixed = tmp_path / "mixed.jsonl"
    proc = run_labtax("mix", str(tmp_path / "plain/phases/skills_recipe.yaml"), "--output", str(mixed), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got["mix"] = _digest(mixed.read_bytes())
    got["train_report.md"] = _digest(markdown(json.loads(json.dumps(TRAIN_REPORT))))
    train = tmp_path / "train_report.json"
    train.write_text(json.dumps(TRAIN_REPORT))
    lint = run_labtax("lint", "--format", "json", cwd=root)
    (tmp_path / "lint.json").write_text(lint.stdout)
    for name in ("plain", "calibrated"):
        proc = run_labtax(
            "comment", "--summary", str(tmp_path / name / "summary.json"), "--train-report", str(train),
            "--lint-report", str(tmp_path / "lint.json"), cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        got[f"{name}/comment.md"] = _digest(proc.stdout)
    return got


def test_a_fixed_run_writes_the_recorded_bytes(tmp_path):
    got = _outputs(tmp_path)
    if os.environ.get("LABTAX_REPIN") == "1":
        PINNED.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    pinned = json.loads(PINNED.read_text())
    changed = sorted(k for k in set(pinned) | set(got) if pinned.get(k) != got.get(k))
    assert not changed, f"outputs changed: {changed}"
