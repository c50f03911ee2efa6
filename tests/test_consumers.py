"""What `labtax generate` writes, read as it is by the tools people train with: the model's chat template,
Hugging Face `datasets` + TRL's SFTTrainer, and instructlab-training's data_process.

The data comes from the real `labtax generate` console script against the scripted OpenAI-compatible server
(tests/fake_openai.py) over four real leaves (one per pipeline), so the files are exactly what a user gets.
The tokenizer is loaded from labtax's model cache with plain transformers, as another tool would load it.
TRL trains one step per file with a tiny randomly initialised Llama that shares SmolLM2's tokenizer (what
is checked is the data path, and a step of the 135M model costs tens of seconds on two busy cores); the
slow test does the same with SmolLM2 itself.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from .conftest import run_labtax
from .fake_openai import FakeOpenAI
from .test_generate import make_taxonomy, read_jsonl

pytest.importorskip("torch")
pytest.importorskip("transformers")

TRAIN_FILES = ("knowledge.jsonl", "foundational.jsonl", "compositional.jsonl")  # the bucket files
WITH_CONTEXT = "knowledge_with_context.jsonl"  # knowledge as reading comprehension, also training data
# What `labtax train` reads, and what instructlab-training's data_path and TRL take: one file per LAB phase.
PHASES = {"knowledge": "phases/knowledge_train_msgs.jsonl", "skills": "phases/skills_train_msgs.jsonl"}
HELDOUT = "eval/heldout.jsonl"
END = "<|im_end|>"


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("consumers")
    root = make_taxonomy(base / "taxonomy")
    out = base / "generated"
    with FakeOpenAI() as fake:
        env = {"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-test", "LABTAX_TEACHER_MODEL": "fake-teacher"}
        # --keep-unvetted: the consumers read what the files hold, whether the fake's judge vetted it or not
        proc = run_labtax(
            "generate", "-n", "3", "--no-progress", "--keep-unvetted", "--output", str(out), cwd=root, env=env
        )
    assert proc.returncode == 0, proc.stderr
    for name in (*TRAIN_FILES, WITH_CONTEXT, *PHASES.values(), HELDOUT):
        assert read_jsonl(out / name), f"{name} is empty: the test would check nothing"
    return out


@pytest.fixture(scope="module")
def model_path(model_cache) -> Path:
    from labtax.teacher.smollm import ensure_cache

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LABTAX_CACHE_DIR", str(model_cache))
        return ensure_cache().path


@pytest.fixture(scope="module")
def tokenizer(model_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_path)


@pytest.fixture
def datasets_cache(tmp_path, monkeypatch):
    """`datasets` writes its Arrow cache here, not into the user's ~/.cache/huggingface."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets")
    return tmp_path / "hf-datasets"


def test_the_chat_template_renders_every_row(generated, tokenizer):
    for name in (*TRAIN_FILES, WITH_CONTEXT, *PHASES.values(), HELDOUT):
        for number, record in enumerate(read_jsonl(generated / name), 1):
            messages = record["messages"]
            text = tokenizer.apply_chat_template(messages, tokenize=False)
            ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
            assert ids and tokenizer.decode(ids) == text, f"{name}:{number}"
            assert text.endswith(f"{END}\n") and text.count("<|im_start|>") == len(messages), f"{name}:{number}"
            for message in messages:
                assert f"<|im_start|>{message['role']}\n{message['content']}{END}" in text, f"{name}:{number}"
            prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
            assert messages[-1]["role"] == "assistant" and text.startswith(prompt), f"{name}:{number}"


def tiny_llama(tokenizer):
    """A randomly initialised Llama with SmolLM2's vocabulary: trains a step in well under a second."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


def sft_one_step(model, tokenizer, dataset, output: Path, **trainer_kw):
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        output_dir=str(output),
        max_steps=1,
        per_device_train_batch_size=2,
        learning_rate=1e-4,
        max_length=2048,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        seed=0,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, **trainer_kw)
    result = trainer.train()
    assert result.global_step == 1 and math.isfinite(result.training_loss) and result.training_loss > 0
    return trainer


@pytest.mark.parametrize("name", [*TRAIN_FILES, WITH_CONTEXT])
def test_trl_trains_a_step_on_each_file(generated, tokenizer, datasets_cache, tmp_path, name):
    pytest.importorskip("trl")
    from datasets import load_dataset

    dataset = load_dataset("json", data_files=str(generated / name), split="train")
    records = read_jsonl(generated / name)
    assert dataset.num_rows == len(records) and dataset[0]["messages"] == records[0]["messages"]
    trainer = sft_one_step(tiny_llama(tokenizer), tokenizer, dataset, tmp_path / "trl")
    # TRL tokenized the conversation with the model's own chat template (and may close it with EOS)
    rendered = tokenizer.apply_chat_template(records[0]["messages"], tokenize=True, return_dict=True)["input_ids"]
    assert trainer.train_dataset[0]["input_ids"][: len(rendered)] == list(rendered)


@pytest.mark.parametrize("phase", PHASES)
def test_trl_trains_a_step_on_each_phase(generated, tokenizer, datasets_cache, tmp_path, phase):
    """A phase as `labtax train` trains it: its phase file (the skills one with its replay rows), loaded the
    way the README shows; and the bucket files with every phase file as one dataset, which needs the same
    columns and types in every row of every file."""
    pytest.importorskip("trl")
    from datasets import load_dataset

    dataset = load_dataset("json", data_files=str(generated / PHASES[phase]), split="train")
    assert dataset.num_rows == len(read_jsonl(generated / PHASES[phase]))
    sft_one_step(tiny_llama(tokenizer), tokenizer, dataset, tmp_path / "trl")
    files = [str(generated / name) for name in (*TRAIN_FILES, WITH_CONTEXT, *PHASES.values())]
    together = load_dataset("json", data_files=files, split="train")
    assert together.num_rows == sum(len(read_jsonl(Path(name))) for name in files)


@pytest.mark.parametrize("name", [*TRAIN_FILES, WITH_CONTEXT, PHASES["skills"]])
def test_instructlab_data_process_masks_all_but_the_answers(
    generated, tokenizer, model_path, datasets_cache, tmp_path, name
):
    pytest.importorskip("instructlab.training")
    from instructlab.training.data_process import process_data

    out = tmp_path / "processed"
    process_data(
        data_path=str(generated / name),
        data_output_path=str(out),
        max_seq_len=4096,
        model_path=str(model_path),
        num_cpu_procs=1,
    )
    records = read_jsonl(generated / name)
    rows = read_jsonl(out / "data.jsonl")
    assert len(rows) == len(records)
    for record, row in zip(records, rows):  # in the file's order
        assert len(row["input_ids"]) == len(row["labels"]) == row["len"]
        assert tokenizer.decode(row["input_ids"]) == tokenizer.apply_chat_template(record["messages"], tokenize=False)
        learned = tokenizer.decode([token for token in row["labels"] if token != -100])
        answers = "".join(m["content"] + END for m in record["messages"] if m["role"] == "assistant")
        assert learned == answers  # the loss is on the assistant turns only, the prompt is masked


@pytest.mark.slow
@pytest.mark.parametrize("phase", PHASES)
def test_trl_trains_smollm2_itself_on_each_phase(generated, datasets_cache, tmp_path, phase, model_cache):
    """The same step on the real 135M model with a LoRA adapter, as a user would fine-tune it."""
    pytest.importorskip("trl")
    from datasets import load_dataset
    from peft import LoraConfig

    from labtax.teacher.smollm import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer()
    dataset = load_dataset("json", data_files=str(generated / PHASES[phase]), split="train")
    lora = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    sft_one_step(model, tokenizer, dataset, tmp_path / "trl", peft_config=lora)
