"""The student: the embedded SmolLM2-135M-Instruct (the teacher's own weights) with a LoRA adapter.

LoRA on the attention projections trains well under 1% of the weights, so a CPU step is cheap and the
adapter saved for review is a few MB. The base weights come from the embedded teacher's loader (one loader
for the whole project, offline, cached as safetensors); fp32, because CPU autograd in bf16 is slower here
and loses the small updates a smoke run makes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path

from labtax.errors import LabtaxError
from labtax.train import INSTALL_HINT

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


def require_extra():
    """Import torch, transformers and peft, or stop with the install command."""
    try:
        import peft  # noqa: F401
        import torch
        import transformers  # noqa: F401
    except ImportError as exc:
        raise LabtaxError(f"`labtax train` needs the train extra ({exc.name} is missing): {INSTALL_HINT}") from None
    return torch


def cpu_threads() -> int:
    """Cores this process may use (respects taskset / cgroup CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def choose_threads() -> int:
    """Threads for torch: $OMP_NUM_THREADS if set, else the cores not already busy (at least 1).

    On an oversubscribed machine torch's OpenMP threads wait for each other at every op: measured here with
    the 2 cores under load ~6, a 3-prompt generation took 30 s with 2 threads and 3.8 s with 1, a forward
    pass 4-6 s against 1.5 s. On an idle machine every core helps, so the 1-minute load average decides.
    """
    if os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]) > 0:
        return int(os.environ["OMP_NUM_THREADS"])
    cores = cpu_threads()
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):
        busy = 0.0
    return max(1, min(cores, int(cores - busy + 0.5)))


def setup_torch(seed: int, threads: int):
    torch = require_extra()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    return torch


def load_base():
    """(model, tokenizer) from the embedded teacher's loader, fp32, in eval mode."""
    torch = require_extra()
    try:
        from labtax.teacher.smollm import load_model_and_tokenizer
    except ImportError as exc:
        raise LabtaxError(f"the embedded model loader is unavailable ({exc}): {INSTALL_HINT}") from None
    model, tokenizer = load_model_and_tokenizer(dtype=torch.float32)
    model.eval()
    return model, tokenizer


def add_lora(model, r: int = 16, alpha: int = 32, dropout: float = 0.0):
    """Wrap the model with a fresh LoRA adapter; B starts at zero, so outputs equal the base model's."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=LORA_TARGETS, bias="none", task_type="CAUSAL_LM"
    )
    with warnings.catch_warnings():  # peft calls a transformers property deprecated in v5; not ours to fix
        warnings.simplefilter("ignore", FutureWarning)
        return get_peft_model(model, config)


def trainable_parameters(model) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def save_adapter(model, folder: Path) -> Path:
    """Write the adapter to a temporary sibling, then swap it in: a crash never leaves half an adapter."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        model.save_pretrained(str(tmp))
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            folder.rename(old)
            tmp.rename(folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder
