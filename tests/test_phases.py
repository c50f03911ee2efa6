"""The training layout of what `labtax generate` writes: one file per LAB phase with its recipe (InstructLab's
`datasets: [{path, sampling_size}]` format), `labtax mix` with a precomputed replay dataset, and a glob for
training data (`generated/*.jsonl`) that picks up no rejected or held-out row.

Real leaves, the real `labtax` console script against the scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from labtax.comment.inputs import CommentInputs
from labtax.mix.phases import replay_count, write_phases
from labtax.mix.recipe import SAMPLE_KEYS, load_recipe, mix
from labtax.train.data import load_data, plan_phases

from .conftest import REPO, run_labtax
from .fake_openai import FakeOpenAI
from .test_generate import make_taxonomy, read_jsonl
from .test_generate_cli import _env

TRAINING = ("compositional.jsonl", "foundational.jsonl", "knowledge.jsonl", "knowledge_with_context.jsonl")
PHASE_FILES = ("phases/knowledge_train_msgs.jsonl", "phases/skills_train_msgs.jsonl")
RECIPES = ("phases/knowledge_recipe.yaml", "phases/skills_recipe.yaml")
SAMPLE = Draft202012Validator(json.loads((REPO / "schema" / "records" / "v2" / "sample.json").read_text()))


def lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def assert_valid(rows: list[dict]) -> None:
    for row in rows:
        errors = [e.message for e in SAMPLE.iter_errors(row)]
        assert not errors, (errors, row)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """Four leaves (one per pipeline), 3 samples each, into a folder an older labtax had written to."""
    base = tmp_path_factory.mktemp("phases")
    root = make_taxonomy(base / "tax")
    out = base / "generated"
    out.mkdir()
    (out / "rejected.jsonl").write_text('{"leaf": "stale", "stage": "judge", "reason": "old layout"}\n')
    (out / "heldout.jsonl").write_text('{"leaf": "stale", "kind": "knowledge", "messages": []}\n')
    with FakeOpenAI() as fake:
        proc = run_labtax(
            "generate", "-n", "3", "--no-progress", "--keep-unvetted", "--output", str(out), cwd=root, env=_env(fake)
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.fixture
def datasets_cache(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets", reason="the consumers extra installs datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets")
    return datasets


def test_the_top_level_holds_training_data_only(generated):
    """rejected.jsonl and heldout.jsonl of an older labtax are gone; their data is in review/ and eval/."""
    assert sorted(p.name for p in generated.glob("*.jsonl")) == list(TRAINING)
    assert len({row["leaf"] for row in read_jsonl(generated / "eval" / "heldout.jsonl")}) == 4  # a seed per leaf
    assert (generated / "review" / "rejected.jsonl").is_file()
    assert all(row["leaf"] != "stale" for row in read_jsonl(generated / "review" / "rejected.jsonl"))
    for name in (*PHASE_FILES, *RECIPES):
        assert (generated / name).is_file(), name


def test_a_glob_for_training_data_picks_up_no_rejected_or_heldout_row(generated, datasets_cache):
    files = {"train": f"{generated}/*.jsonl", "test": f"{generated}/eval/heldout.jsonl"}
    loaded = datasets_cache.load_dataset("json", data_files=files)
    heldout = [row["messages"] for row in read_jsonl(generated / "eval" / "heldout.jsonl")]
    assert loaded["train"].num_rows == sum(len(lines(generated / name)) for name in TRAINING) == 15
    assert set(loaded["train"].column_names) == set(SAMPLE_KEYS)  # no rejection's stage/reason, no bare seed
    assert not any(row["messages"] in heldout for row in loaded["train"])
    assert loaded["test"].num_rows == len(heldout) and loaded["test"][0]["messages"] == heldout[0]
    # the bucket files and both phase files load as one dataset: one shape in every row of every file
    everything = [str(generated / name) for name in (*TRAINING, *PHASE_FILES)]
    together = datasets_cache.load_dataset("json", data_files=everything, split="train")
    assert together.num_rows == sum(len(lines(Path(name))) for name in everything)


def test_phase_files_follow_their_recipes(generated):
    knowledge, skills = (yaml.safe_load((generated / name).read_text()) for name in RECIPES)
    assert knowledge == {
        "datasets": [
            {"path": "../knowledge.jsonl", "sampling_size": 1.0},
            {"path": "../knowledge_with_context.jsonl", "sampling_size": 1.0},
            {"path": "../foundational.jsonl", "sampling_size": 1.0},
        ]
    }
    phase1 = lines(generated / PHASE_FILES[0])
    # phase 1: knowledge closed-book and with its chunk, foundational skills, each row once, shuffled
    bucket_rows = [
        line
        for name in ("knowledge.jsonl", "knowledge_with_context.jsonl", "foundational.jsonl")
        for line in lines(generated / name)
    ]
    assert Counter(phase1) == Counter(bucket_rows) and len(phase1) == 9 and phase1 != bucket_rows
    # phase 2: every compositional sample once, plus 0.3 x 6 = 2 rows replayed from phase 1's file
    replay = replay_count(6, 9)
    assert replay == 2 and skills == {
        "datasets": [
            {"path": "../compositional.jsonl", "sampling_size": 1.0},
            {"path": "knowledge_train_msgs.jsonl", "sampling_size": replay},
        ]
    }
    phase2 = lines(generated / PHASE_FILES[1])
    own = [line for line in phase2 if json.loads(line)["kind"] == "compositional"]
    replayed = [line for line in phase2 if json.loads(line)["kind"] != "compositional"]
    assert Counter(own) == Counter(lines(generated / "compositional.jsonl")) and len(replayed) == replay
    assert len(set(replayed)) == replay and set(replayed) <= set(phase1)
    assert_valid([json.loads(line) for name in PHASE_FILES for line in lines(generated / name)])


def test_phase_files_are_seeded_and_labtax_mix_rebuilds_them(generated, tmp_path):
    before = {name: (generated / name).read_bytes() for name in (*PHASE_FILES, *RECIPES)}
    write_phases(generated)  # what the next generate or merge does with the same bucket files
    assert {name: (generated / name).read_bytes() for name in before} == before
    for recipe, phase_file in zip(RECIPES, PHASE_FILES):
        out = tmp_path / Path(phase_file).name
        proc = run_labtax("mix", str(generated / recipe), "--output", str(out))
        assert proc.returncode == 0 and "(0 external)" in proc.stdout, proc.stderr
        assert out.read_bytes() == before[phase_file], recipe
    other = mix(load_recipe(generated / RECIPES[0]), seed=1)  # another seed: the same rows, another order
    again = [json.loads(line) for line in lines(generated / PHASE_FILES[0])]
    assert other != again and sorted(map(json.dumps, other)) == sorted(map(json.dumps, again))


def test_mix_replays_a_messages_only_dataset_as_external_rows(generated, tmp_path, datasets_cache):
    """InstructLab community data (messages, metadata, id) mixed into a copy of the skills recipe."""
    community = tmp_path / "community" / "instructlab_community.jsonl"
    community.parent.mkdir()
    rows = [
        {
            "messages": [
                {"role": "system", "content": "You are an AI language model."},
                {"role": "user", "content": f"Name a prime number above {n * 10}."},
                {"role": "assistant", "content": f"{[11, 23, 31, 41][n]} is one."},
            ],
            "metadata": json.dumps({"dataset": "community", "n": n}),
            "id": f"0000-{n}",
        }
        for n in range(4)
    ]
    rows.append({"messages": [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi."}]})
    community.write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = tmp_path / "skills_with_community.yaml"
    recipe.write_text(
        "datasets:\n"
        f"  - path: {generated / 'compositional.jsonl'}\n    sampling_size: 1.0\n"
        f"  - path: {generated / PHASE_FILES[0]}\n    sampling_size: 2\n"
        "  - path: community/instructlab_community.jsonl\n    sampling_size: 0.6\n"  # int(5 x 0.6) = 3 rows
        "sys_prompt: You are a careful assistant.\n"
    )
    out = tmp_path / "skills_train_msgs.jsonl"
    proc = run_labtax("mix", str(recipe), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"mixed 11 rows from 3 datasets into {out} (3 external)" in proc.stdout
    mixed = read_jsonl(out)
    assert_valid(mixed)
    external = [row for row in mixed if row["kind"] == "external"]
    assert len(external) == 3 and all(row["leaf"] == "" for row in external)
    assert all(row["provenance"]["document"]["path"] == "community/instructlab_community.jsonl" for row in external)
    by_line = {row["provenance"]["sample_index"]: row for row in external}
    for line, row in by_line.items():  # the source's id is kept; a row without one gets a stable one
        assert row["id"] == rows[line - 1]["id"] if "id" in rows[line - 1] else len(row["id"]) == 16
        contents = [m["content"] for m in row["messages"][1:]]
        assert contents == [m["content"] for m in rows[line - 1]["messages"] if m["role"] != "system"]
    assert all(row["messages"][0] == {"role": "system", "content": "You are a careful assistant."} for row in mixed)
    assert sum(row["kind"] == "compositional" for row in mixed) == 6
    assert run_labtax("mix", str(recipe), "--output", str(tmp_path / "again.jsonl")).returncode == 0
    assert (tmp_path / "again.jsonl").read_bytes() == out.read_bytes()
    # what datasets reads: the mix alone, and after the bucket files
    assert datasets_cache.load_dataset("json", data_files=str(out), split="train").num_rows == 11
    files = [str(generated / "compositional.jsonl"), str(out)]
    assert datasets_cache.load_dataset("json", data_files=files, split="train").num_rows == 17


def test_train_plans_each_phase_from_its_file(generated):
    data = load_data(generated, ["knowledge", "skills"])
    knowledge, skills = plan_phases(data, ["knowledge", "skills"])
    assert len(knowledge.samples) == 9 and not knowledge.replay and knowledge.external == 0
    assert len(knowledge.own_leaves) == 2 and len(skills.own_leaves) == 2
    assert len(skills.samples) == 6 and len(skills.replay) == 2
    assert set(skills.replayed_leaves) <= set(knowledge.own_leaves) and skills.replayed_leaves


BAD_RECIPES = {
    "missing dataset": (
        "datasets:\n  - path: nowhere.jsonl\n    sampling_size: 1.0\n",
        None,
        "nowhere.jsonl not found",
    ),
    "bad YAML": ("datasets: [\n", None, "not valid YAML"),
    "not a mapping": ("- path: data.jsonl\n", None, "a recipe is a mapping with a `datasets:` list"),
    "size not a number": (
        "datasets:\n  - path: data.jsonl\n    sampling_size: half\n",
        None,
        "sampling_size must be a number",
    ),
    "negative size": (
        "datasets:\n  - path: data.jsonl\n    sampling_size: -2\n",
        None,
        "sampling_size must be a number",
    ),
    "row without messages": ("datasets:\n  - path: data.jsonl\n", '{"id": "x", "text": "hi"}\n', "no 'messages' list"),
    "row without an answer": (
        "datasets:\n  - path: data.jsonl\n",
        '{"messages": [{"role": "user", "content": "q"}]}\n',
        "no assistant answer",
    ),
    "row not JSON": ("datasets:\n  - path: data.jsonl\n", '{"messages": [\n', "not valid JSON"),
    "sys_prompt not text": ("datasets:\n  - path: data.jsonl\nsys_prompt: [1]\n", None, "sys_prompt must be text"),
}


@pytest.mark.parametrize("case", BAD_RECIPES)
def test_a_bad_recipe_is_one_line_naming_the_file_and_the_fix(tmp_path, case):
    text, data, expected = BAD_RECIPES[case]
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text)
    good = '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'
    (tmp_path / "data.jsonl").write_text(data or good)
    out = tmp_path / "out.jsonl"
    proc = run_labtax("mix", str(recipe), "--output", str(out))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and expected in proc.stderr, proc.stderr
    named = tmp_path / "data.jsonl" if data else recipe
    assert str(named) in proc.stderr and not out.exists()


def test_a_missing_recipe_names_the_fix(tmp_path):
    proc = run_labtax("mix", str(tmp_path / "none.yaml"), "--output", str(tmp_path / "out.jsonl"))
    assert proc.returncode == 2 and proc.stderr.startswith("labtax: error: recipe not found: ")
    assert "recipe format" in proc.stderr and "Traceback" not in proc.stderr


def test_the_comment_reads_rejections_where_an_older_labtax_wrote_them(tmp_path):
    leaf = "compositional_skills/writing/poems/qna.yaml"
    (tmp_path / "rejected.jsonl").write_text(json.dumps({"leaf": leaf, "stage": "judge", "reason": "old"}) + "\n")
    inputs = CommentInputs(summary={"leaves": {leaf: {}}}, generated_dir=tmp_path)
    assert [r["reason"] for r in inputs.rejected([leaf], 5)[leaf]] == ["old"]
    (tmp_path / "review").mkdir()
    (tmp_path / "review" / "rejected.jsonl").write_text(json.dumps({"leaf": leaf, "reason": "new"}) + "\n")
    assert [r["reason"] for r in inputs.rejected([leaf], 5)[leaf]] == ["new"]


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_a_dataset_or_recipe_that_is_no_plain_file_is_refused_before_a_byte_is_read(tmp_path, kind):
    """#24 item 20: a dataset at /dev/zero read until memory ran out; a FIFO hung. The guard every repository
    file gets applies: a regular file, up to a size, opened without waiting."""
    import os

    special = tmp_path / "special"
    if kind == "device":
        special = Path("/dev/zero")
    else:
        os.mkfifo(special)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"datasets:\n  - path: {special}\n    sampling_size: 1.0\n")
    out = tmp_path / "out.jsonl"
    proc = run_labtax("mix", str(recipe), "--output", str(out), timeout=30)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "not a regular file" in proc.stderr and str(special) in proc.stderr and not out.exists(), proc.stderr
    proc = run_labtax("mix", str(special), "--output", str(out), timeout=30)  # the recipe itself
    assert proc.returncode == 2 and "not a regular file" in proc.stderr and "Traceback" not in proc.stderr
