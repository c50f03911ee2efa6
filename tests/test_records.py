"""Every row labtax writes follows one versioned record schema (schema/records/: v2 for samples, which may be
external replay rows, v1 for rejections, held-out seeds and summary.json with each leaf.json's summary), the
typed readers (labtax.records.types) keep every field of what generate writes, and the files load in Hugging Face `datasets`
together, as people load training data, with no workaround."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from .conftest import REPO, run_labtax
from .fake_openai import FakeOpenAI, Reply, good_teacher, stage_of
from .test_generate import make_taxonomy, read_jsonl
from .test_generate_cli import _env

SCHEMAS = REPO / "schema" / "records"
VERSIONS = {"sample": "v2", "rejected": "v1", "heldout": "v1", "summary": "v1"}  # the latest of each record
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
        proc = run_labtax(
            "generate", "-n", "3", "--no-progress", "--keep-unvetted", "--output", str(out), cwd=root, env=_env(fake)
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def validator(name: str, version: str | None = None) -> Draft202012Validator:
    return Draft202012Validator(json.loads((SCHEMAS / (version or VERSIONS[name]) / f"{name}.json").read_text()))


def test_every_written_row_follows_the_record_schema(generated):
    files = {
        "sample": [generated / f"{b}.jsonl" for b in BUCKETS] + [generated / "knowledge_with_context.jsonl"],
        "rejected": [generated / "review" / "rejected.jsonl"],
        "heldout": [generated / "eval" / "heldout.jsonl"],
    }
    files["sample"] += sorted(generated.glob("phases/*.jsonl")) + sorted(generated.rglob("samples.jsonl"))
    files["rejected"] += sorted(p for p in generated.rglob("rejected.jsonl") if p.parent != generated / "review")
    assert len(files["sample"]) > 8 and len(files["rejected"]) > 1
    counts = {}
    for name, paths in files.items():
        checks = [validator(name), validator(name, "v1")]  # what generate writes is still valid v1 too
        rows = [row for path in paths for row in read_jsonl(path)]
        counts[name] = len(rows)
        for row in rows:
            for check in checks:
                errors = [e.message for e in check.iter_errors(row)]
                assert not errors, (name, errors, row)
    assert counts["sample"] > 0 and counts["rejected"] > 0 and counts["heldout"] > 0
    reasons = {row["reason"] for row in read_jsonl(generated / "review" / "rejected.jsonl")}
    assert {"parse_failure", "judge_score"} <= reasons  # both candidate shapes of old are here, now one shape


def test_summary_json_and_every_leaf_summary_follow_the_summary_schema(generated):
    schema = json.loads((SCHEMAS / VERSIONS["summary"] / "summary.json").read_text())
    Draft202012Validator.check_schema(schema)
    summary = json.loads((generated / "summary.json").read_text())
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(summary)]
    assert not errors, errors
    leaf_schema = Draft202012Validator({**schema["$defs"]["leaf"], "$defs": schema["$defs"]})
    heldout = validator("heldout")
    records = sorted(generated.rglob("leaf.json"))
    assert len(records) == len(summary["leaves"]) > 1
    for path in records:
        record = json.loads(path.read_text())
        # summary.json adds what the run's training files hold back (held_back); leaf.json has the rest as is
        in_run = {key: value for key, value in summary["leaves"][record["leaf"]].items() if key != "held_back"}
        assert in_run == record["summary"]
        errors = [e.message for e in leaf_schema.iter_errors(record["summary"])]
        errors += [e.message for row in record["heldout"] for e in heldout.iter_errors(row)]
        assert not errors, (path, errors)
    assert {leaf["gate"]["separates"] for leaf in summary["leaves"].values()} <= {True, False, None}


def test_the_typed_readers_keep_every_field_generate_writes(generated):
    """What the schemas allow, the readers pass through unchanged: a consumer that reads through them (the
    comment, merge, train) sees the files as written, only a damaged or hostile field is dropped."""
    from labtax.records.types import read_rejected, read_samples, run_summary_from_json

    summary = json.loads((generated / "summary.json").read_text())
    assert run_summary_from_json(summary) == summary
    for path in sorted(generated.rglob("samples.jsonl")):
        assert read_samples(path) == read_jsonl(path)
    rejected = generated / "review" / "rejected.jsonl"
    assert list(read_rejected(rejected)) == read_jsonl(rejected)


def test_the_summary_reader_drops_what_is_not_of_its_type():
    from labtax.records.types import run_summary_from_json

    hostile = {
        "run": {"teacher": "openai", "skipped": [{"leaf": "a/qna.yaml", "errors": []}, "not an object"]},
        "leaves": {
            "a/qna.yaml": {"requested": "5", "accepted": True, "rejected": {"duplicate": 2, "x": "many"}, "note": 3}
        },
        "totals": [],
    }
    read = run_summary_from_json(hostile)
    assert read["leaves"]["a/qna.yaml"] == {"rejected": {"duplicate": 2}}  # a missing count stays missing, never 0
    assert read["run"]["skipped"] == [{"leaf": "a/qna.yaml", "errors": []}] and read["totals"] == {}
    with pytest.raises(ValueError, match="'leaves' must be an object"):
        run_summary_from_json({"leaves": []})


def test_datasets_loads_the_bucket_files_together_and_each_file_alone(generated):
    datasets = pytest.importorskip("datasets", reason="the train extra installs datasets")
    buckets = [str(generated / f"{b}.jsonl") for b in BUCKETS]
    together = datasets.load_dataset("json", data_files=buckets, split="train")
    assert together.num_rows == sum(len(read_jsonl(Path(b))) for b in buckets) > 0
    assert set(together.column_names) == {"id", "messages", "leaf", "kind", "provenance", "judge"}
    for name in ("review/rejected.jsonl", "eval/heldout.jsonl", "knowledge_with_context.jsonl"):
        alone = datasets.load_dataset("json", data_files=str(generated / name), split="train")
        assert alone.num_rows == len(read_jsonl(generated / name)) > 0


def test_the_pr_comment_reads_v1_records(generated):
    """The comment shows each sample's judge criteria and a rejected reply from the v1 shapes."""
    proc = run_labtax("comment", "--summary", str(generated / "summary.json"), "--max-chars", "65536")
    assert proc.returncode == 0, proc.stderr
    assert "<sub>Judge: " in proc.stdout and "pair 3" in proc.stdout
    assert "**Reply**" in proc.stdout  # an unparsable judge reply, shown from candidate.raw


def test_sample_v2_is_v1_plus_external_rows_only():
    """v2 differs from v1 only where external replay rows need it, and in `held_back` (only in
    review/unvetted.jsonl rows); a change to v1's fields must reach v2 too."""
    v1, v2 = (json.loads((SCHEMAS / v / "sample.json").read_text()) for v in ("v1", "v2"))
    assert v2["$id"].endswith("/records/v2/sample.json") and v2["properties"]["kind"]["enum"][-1] == "external"
    assert v2["properties"]["messages"]["minItems"] == 2 and v2["else"] == {"properties": {"messages": {"minItems": 3}}}
    for key in ("$id", "title", "description", "if", "then", "else"):
        v1.pop(key, None)
        v2.pop(key)
    v2["properties"].pop("held_back")
    v2["properties"]["kind"]["enum"].remove("external")
    v2["properties"]["messages"]["minItems"] = 3
    assert v1 == v2
