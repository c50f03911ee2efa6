"""Every row labtax writes follows one versioned record schema (schema/records/v1/), and the files load in
Hugging Face `datasets` together, as people load training data, with no workaround."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from .conftest import REPO, run_labtax
from .fake_openai import FakeOpenAI, Reply, good_teacher, stage_of
from .test_generate import make_taxonomy, read_jsonl
from .test_generate_cli import _env

SCHEMAS = REPO / "schema" / "records" / "v1"
BUCKETS = ("knowledge", "foundational", "compositional")


def some_bad(request: dict) -> Reply:
    """Mostly good replies, with the rejections whose candidate used to change shape: an unparsable judge reply
    (the raw text) and a low score (an object)."""
    seed = request.get("seed") or 0
    stage = stage_of(request)
    if stage.startswith("judge") and seed % 5 == 1:
        return Reply("I think it is fine overall")  # no score: parse_failure with the raw reply
    if stage.startswith("judge") and seed % 5 == 2:
        return Reply("1")
    return good_teacher(request)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("records")
    root = make_taxonomy(tmp / "tax")
    out = tmp / "out"
    with FakeOpenAI(some_bad) as fake:
        proc = run_labtax("generate", "-n", "3", "--no-progress", "--output", str(out), cwd=root, env=_env(fake))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads((SCHEMAS / f"{name}.json").read_text()))


def test_every_written_row_follows_the_record_schema(generated):
    files = {
        "sample": [generated / f"{b}.jsonl" for b in BUCKETS] + [generated / "knowledge_with_context.jsonl"],
        "rejected": [generated / "rejected.jsonl"],
        "heldout": [generated / "heldout.jsonl"],
    }
    files["sample"] += sorted(generated.rglob("samples.jsonl"))
    files["rejected"] += sorted(p for p in generated.rglob("rejected.jsonl") if p.parent != generated)
    counts = {}
    for name, paths in files.items():
        check = validator(name)
        rows = [row for path in paths for row in read_jsonl(path)]
        counts[name] = len(rows)
        for row in rows:
            errors = [e.message for e in check.iter_errors(row)]
            assert not errors, (name, errors, row)
    assert counts["sample"] > 0 and counts["rejected"] > 0 and counts["heldout"] > 0
    reasons = {row["reason"] for row in read_jsonl(generated / "rejected.jsonl")}
    assert {"parse_failure", "judge_score"} <= reasons  # both candidate shapes of old are here, now one shape


def test_datasets_loads_the_bucket_files_together_and_each_file_alone(generated):
    datasets = pytest.importorskip("datasets", reason="the train extra installs datasets")
    buckets = [str(generated / f"{b}.jsonl") for b in BUCKETS]
    together = datasets.load_dataset("json", data_files=buckets, split="train")
    assert together.num_rows == sum(len(read_jsonl(Path(b))) for b in buckets) > 0
    assert set(together.column_names) == {"id", "messages", "leaf", "kind", "provenance", "judge"}
    for name in ("rejected.jsonl", "heldout.jsonl", "knowledge_with_context.jsonl"):
        alone = datasets.load_dataset("json", data_files=str(generated / name), split="train")
        assert alone.num_rows == len(read_jsonl(generated / name)) > 0


def test_the_pr_comment_reads_v1_records(generated):
    """The comment shows each sample's judge criteria and a rejected reply from the v1 shapes."""
    proc = run_labtax("comment", "--summary", str(generated / "summary.json"), "--max-chars", "65536")
    assert proc.returncode == 0, proc.stderr
    assert "<sub>Judge: " in proc.stdout and "pair 3" in proc.stdout
    assert "**Reply**" in proc.stdout  # an unparsable judge reply, shown from candidate.raw
