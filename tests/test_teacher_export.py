"""`labtax teacher path` / `labtax teacher export DIR`: the embedded SmolLM2-135M-Instruct as a plain transformers
folder, and the README's training examples that use it, run as written with no Hub (HF_HUB_OFFLINE, as every
test session sets it).

The README's TRL example trains for TRL's default length; here its SFTConfig is cut to one short step on the
CPU (the only change): the model, data, LoRA and trainer are the README's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from labtax.teacher.smollm import MARKER

from .conftest import REPO, run_labtax
from .fake_openai import FakeOpenAI
from .markdown_blocks import block_with
from .test_generate import make_taxonomy

pytest.importorskip("torch")
pytest.importorskip("transformers")

README = REPO / "README.md"
CHECKPOINT = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}


def test_teacher_path_prints_the_converted_checkpoint(model_cache):
    proc = run_labtax("teacher", "path")
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip())
    assert proc.stdout.count("\n") == 1 and path.parent == model_cache  # one line: `$(labtax teacher path)`
    assert {item.name for item in path.iterdir()} >= CHECKPOINT


def test_export_writes_a_plain_checkpoint_and_refuses_a_folder_in_use(model_cache, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = tmp_path / "models" / "smollm2"
    proc = run_labtax("teacher", "export", str(target))
    assert proc.returncode == 0, proc.stderr
    assert f"exported SmolLM2-135M-Instruct to {target}" in proc.stdout
    names = {item.name for item in target.iterdir()}
    assert names >= CHECKPOINT and MARKER not in names
    assert [item.name for item in target.parent.iterdir()] == ["smollm2"]  # no staging folder left behind
    tokenizer = AutoTokenizer.from_pretrained(target, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(target, local_files_only=True)
    assert model.config.model_type == "llama" and "<|im_start|>user" in tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False
    )

    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    proc = run_labtax("teacher", "export", str(used))
    assert proc.returncode == 2 and "not an empty folder" in proc.stderr, proc.stderr
    assert [item.name for item in used.iterdir()] == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_labtax("teacher", "export", str(empty)).returncode == 0 and (empty / "config.json").is_file()


@pytest.fixture
def work(model_cache, tmp_path) -> Path:
    """A working folder with `generated/` as `labtax generate` writes it (the scripted teacher, one skill leaf)."""
    root = make_taxonomy(tmp_path / "taxonomy", ("freeform",))
    work = tmp_path / "work"
    with FakeOpenAI() as fake:
        env = {"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-test", "LABTAX_TEACHER_MODEL": "fake-teacher"}
        proc = run_labtax(
            "generate",
            "-n",
            "3",
            "--no-progress",
            "--keep-unvetted",
            "--output",
            str(work / "generated"),
            cwd=root,
            env=env,
        )
    assert proc.returncode == 0, proc.stderr
    assert (work / "generated" / "phases" / "skills_train_msgs.jsonl").stat().st_size > 0
    return work


def sh(script: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_the_readme_trl_peft_and_instructlab_examples_run_offline(work, monkeypatch):
    import datasets
    import trl

    assert "HuggingFaceTB/" not in block_with(README, "python", "SFTTrainer")  # no Hub id to download
    proc = sh(block_with(README, "sh", "labtax teacher export"), work)
    assert proc.returncode == 0, proc.stderr

    real = trl.SFTConfig

    def one_step(**kwargs):  # the README's settings, plus: one step, small batch, CPU, no reports or saves
        short = {"max_steps": 1, "per_device_train_batch_size": 2, "max_length": 512, "use_cpu": True}
        return real(**kwargs, **short, report_to=[], save_strategy="no", disable_tqdm=True)

    monkeypatch.setattr(trl, "SFTConfig", one_step)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", work / "hf-datasets")
    monkeypatch.chdir(work)
    scope: dict = {}
    exec(compile(block_with(README, "python", "SFTTrainer"), "README.md", "exec"), scope)
    assert scope["trainer"].state.global_step == 1
    assert type(scope["trainer"].model).__name__.startswith("PeftModel")  # the LoRA adapter was applied

    pytest.importorskip("instructlab.training")
    proc = sh(block_with(README, "sh", "instructlab.training.data_process"), work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (work / "processed" / "data.jsonl").stat().st_size > 0
