"""The model cache as other tools read it: keyed by transformers major, files that 4.x and 5.x read alike.

transformers 5 writes the rope theta only inside `rope_parameters` and names its tokenizer class
`TokenizersBackend`; transformers 4 loads such a folder with rope theta 10000 instead of 100000 (silently
wrong logits) and cannot load the tokenizer at all. These tests read the real cache (built from the real
GGUF, as tests/test_train.py does) and check the keying on copies of it, without converting again.

A check in a real transformers 4 environment runs when LABTAX_TRANSFORMERS4_PYTHON names its python
(e.g. a venv with `pip install 'transformers>=4.46,<5' torch==2.13.0`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

PROBE = "The café costs €3 — naïve résumé. " * 40  # a few hundred tokens: a wrong rope theta shows at once


def link_tree(source: Path, target: Path) -> Path:
    """A copy of a cache folder that costs nothing (hard links; a plain copy across filesystems)."""
    target.mkdir(parents=True)
    for item in source.iterdir():
        try:
            os.link(item, target / item.name)
        except OSError:
            shutil.copy2(item, target / item.name)
    return target


@pytest.fixture(scope="module")
def cache(model_cache) -> Path:
    from labtax.teacher.smollm import ensure_cache

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LABTAX_CACHE_DIR", str(model_cache))
        return ensure_cache().path


def gguf_rope_theta() -> float:
    from gguf import GGUFReader

    from labtax.teacher.weights import locate_gguf

    field = GGUFReader(locate_gguf().path).fields["llama.rope.freq_base"]
    return float(field.parts[field.data[0]][0])


def test_config_and_tokenizer_say_the_same_to_transformers_4_and_5(cache):
    import transformers
    from transformers import AutoConfig, AutoTokenizer

    from labtax.teacher import smollm

    theta = gguf_rope_theta()
    assert theta == 100000.0
    config = json.loads((cache / "config.json").read_text())
    # 4.x reads the top-level key (default 10000); 5.x reads rope_parameters: both carry the GGUF's value
    assert config["rope_theta"] == theta and config["rope_parameters"]["rope_theta"] == theta
    assert config["rope_parameters"]["rope_type"] == "default" and not config.get("rope_scaling")
    assert AutoConfig.from_pretrained(cache).rope_parameters["rope_theta"] == theta

    tokenizer_config = json.loads((cache / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast"  # a class 4.x has; 5.x maps it
    assert tokenizer_config["chat_template"] == (cache / "chat_template.jinja").read_text()  # 4.x < 4.50 reads it here
    assert not {"is_local", "local_files_only"} & set(tokenizer_config)
    tokenizer = AutoTokenizer.from_pretrained(cache)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|im_end|>"

    marker = json.loads((cache / smollm.MARKER).read_text())
    major = int(transformers.__version__.split(".")[0])
    assert marker["transformers_major"] == major and marker["format"] == smollm.CACHE_FORMAT
    assert marker["transformers_version"] == transformers.__version__
    assert cache.name.endswith(f"-tf{major}-v{smollm.CACHE_FORMAT}")


def test_a_cache_of_another_transformers_major_is_not_reused(cache, tmp_path, monkeypatch):
    from labtax.teacher import smollm
    from labtax.teacher.weights import locate_gguf

    monkeypatch.setenv("LABTAX_CACHE_DIR", str(tmp_path))
    weights, major = locate_gguf(), smollm.transformers_major()
    other = major - 1

    def mark_as(folder: Path, **changes) -> None:
        marker = json.loads((cache / smollm.MARKER).read_text())
        (folder / smollm.MARKER).unlink()
        (folder / smollm.MARKER).write_text(json.dumps({**marker, **changes}))

    # a 4.x install sharing the cache dir keeps its own folder; this install never loads it
    foreign = link_tree(cache, tmp_path / smollm.cache_key(weights, major=other))
    mark_as(foreign, transformers_major=other)
    # and a folder at this install's own key whose marker names another major (copied in by hand) is rebuilt
    misplaced = link_tree(cache, tmp_path / smollm.cache_key(weights))
    mark_as(misplaced, transformers_major=other)
    assert smollm.cache_key(weights) != foreign.name and f"-tf{other}-" in foreign.name
    assert not smollm.is_complete(misplaced, weights) and not smollm.cache_status()["cached"]

    builds = []

    def convert_by_linking(weights, target: Path) -> None:  # the real conversion takes 20 s or more
        builds.append(target)
        for item in cache.iterdir():
            if item.name != smollm.MARKER:
                os.link(item, target / item.name)
        smollm.write_marker(weights, target)

    monkeypatch.setattr(smollm, "_convert", convert_by_linking)
    built = smollm.ensure_cache(log=lambda message: None)
    assert built.built and len(builds) == 1 and built.path == misplaced
    assert json.loads((built.path / smollm.MARKER).read_text())["transformers_major"] == major
    assert json.loads((foreign / smollm.MARKER).read_text())["transformers_major"] == other  # left alone
    assert smollm.ensure_cache(log=lambda message: None).built is False and len(builds) == 1
    assert smollm.cache_status()["cached"] is True

    # an older layout (format) at the same name is not trusted either
    mark_as(built.path, format=smollm.CACHE_FORMAT - 1)
    assert smollm.ensure_cache(log=lambda message: None).built and len(builds) == 2


def test_the_base_reference_names_no_path_of_this_machine(cache):
    from labtax.teacher.smollm import base_model_reference
    from labtax.teacher.weights import locate_gguf

    reference = base_model_reference()
    weights = locate_gguf()
    assert reference["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert reference["weights"]["sha256"] == weights.identity and reference["cache_key"] == cache.name
    text = json.dumps(reference)
    assert str(Path.home()) not in text and "/" not in text.replace(reference["base_model"], "")


TRANSFORMERS4_PROBE = """
import json, sys, torch, transformers
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
path, text = sys.argv[1], sys.argv[2]
tokenizer = AutoTokenizer.from_pretrained(path)
rendered = tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False)
ids = tokenizer(rendered, add_special_tokens=False, return_tensors="pt")["input_ids"]
model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32).eval()
with torch.no_grad():
    loss = model(ids, labels=ids).loss.item()
print(json.dumps({"version": transformers.__version__, "theta": AutoConfig.from_pretrained(path).rope_theta,
                  "ids": ids[0].tolist(), "loss": loss}))
"""


@pytest.mark.skipif(
    not os.environ.get("LABTAX_TRANSFORMERS4_PYTHON"), reason="LABTAX_TRANSFORMERS4_PYTHON names no transformers 4 venv"
)
def test_transformers_4_loads_the_cache_with_the_same_numbers(cache):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    proc = subprocess.run(
        [os.environ["LABTAX_TRANSFORMERS4_PYTHON"], "-c", TRANSFORMERS4_PROBE, str(cache), PROBE],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    old = json.loads(proc.stdout.splitlines()[-1])
    assert old["version"].startswith("4.") and old["theta"] == gguf_rope_theta()
    tokenizer = AutoTokenizer.from_pretrained(cache)
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": PROBE}], tokenize=False)
    ids = tokenizer(rendered, add_special_tokens=False, return_tensors="pt")["input_ids"]
    assert old["ids"] == ids[0].tolist() and len(old["ids"]) > 300
    model = AutoModelForCausalLM.from_pretrained(cache, dtype=torch.float32).eval()
    with torch.no_grad():
        loss = model(ids, labels=ids).loss.item()
    assert abs(old["loss"] - loss) < 1e-4, (old["loss"], loss)
