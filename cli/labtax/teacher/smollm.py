"""Load SmolLM2-135M-Instruct for the embedded teacher and for training: one loader, the same weights.

Reading the GGUF (dequantizing every tensor) takes ~20 s; loading safetensors takes well under a second.
So the first run converts the GGUF once into a user cache dir, keyed by the GGUF's sha256, and every later
run loads from there. Two first runs at once are safe: a file lock lets one build (in a temp dir, renamed
into place atomically) while the other waits and then loads the finished cache.

torch and transformers are imported inside the functions: `labtax lint` and `labtax teacher info` never
pay for them. Nothing here downloads anything (HF_HUB_OFFLINE, local_files_only).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from labtax.cachedir import cache_root
from labtax.errors import LabtaxError
from labtax.teacher.weights import MODEL_NAME, GGUFWeights, locate_gguf

CACHE_FORMAT = 1  # bump when the cached layout changes: old caches are then simply not used
MARKER = "labtax-cache.json"  # written last, inside the temp dir: present means the cache is complete
INSTALL_EXTRA = "pip install 'labtax[local]' torch==2.13.0"
LOCAL_MODULES = ("torch", "transformers", "gguf", "safetensors")


def cache_dir_for(weights: GGUFWeights) -> Path:
    return cache_root() / f"smollm2-135m-instruct-{weights.identity[:16]}-v{CACHE_FORMAT}"


def missing_local_modules() -> list[str]:
    """The extra's modules that are not installed (found without importing them)."""
    return [name for name in LOCAL_MODULES if importlib.util.find_spec(name) is None]


def require_local_extra() -> None:
    missing = missing_local_modules()
    if missing:
        raise LabtaxError(
            f"the embedded teacher needs {', '.join(missing)}; run `{INSTALL_EXTRA}` (or `make demo`), "
            "or point labtax at an endpoint with --base-url / OPENAI_BASE_URL"
        )


def cache_status() -> dict:
    """For `labtax teacher info`: where the weights and the cache are, without importing torch."""
    status = {"cache_root": str(cache_root()), "missing_modules": missing_local_modules()}
    try:
        weights = locate_gguf()
    except LabtaxError as exc:
        return {**status, "gguf": None, "problem": str(exc), "cache_dir": None, "cached": False}
    directory = cache_dir_for(weights)
    return {
        **status,
        "gguf": str(weights.path),
        "weights_version": weights.version,
        "gguf_sha256": weights.identity,
        "cache_dir": str(directory),
        "cached": (directory / MARKER).is_file(),
    }


@dataclass
class CachedModel:
    path: Path
    built: bool  # this call converted the GGUF (cold cache)
    seconds: float  # spent building or waiting for another process's build


def ensure_cache(weights: GGUFWeights | None = None, *, log=None) -> CachedModel:
    """The cache dir for these weights, converting the GGUF first if no complete cache exists."""
    weights = weights or locate_gguf()
    final = cache_dir_for(weights)
    if (final / MARKER).is_file():
        return CachedModel(final, built=False, seconds=0.0)
    require_local_extra()
    root = final.parent
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LabtaxError(
            f"cannot create the model cache {root}: {exc}; set LABTAX_CACHE_DIR to a writable folder"
        ) from None
    started = time.monotonic()
    with _exclusive_lock(root / f".{final.name}.lock"):
        if (final / MARKER).is_file():  # another process built it while we waited
            return CachedModel(final, built=False, seconds=time.monotonic() - started)
        (log or _stderr)(f"labtax: converting {weights.filename} into {final} (once, about 20 s)")
        staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{final.name}.build-"))
        try:
            _convert(weights, staging)
            _share_like_umask(staging)
            if final.exists():  # a leftover without its marker: incomplete, replace it
                shutil.rmtree(final)
            os.rename(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return CachedModel(final, built=True, seconds=time.monotonic() - started)


def load_model_and_tokenizer(dtype="float32", *, log=None):
    """(model, tokenizer) from the cache, in `dtype` (a torch.dtype or its name), in eval mode."""
    require_local_extra()
    cached = ensure_cache(log=log)
    _offline()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    with _quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(cached.path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(cached.path, local_files_only=True, dtype=torch_dtype)
    model.eval()
    return model, tokenizer


def _convert(weights: GGUFWeights, target: Path) -> None:
    """Dequantize the GGUF with transformers and save it as safetensors plus the tokenizer."""
    _offline()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with _quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(weights.directory, gguf_file=weights.filename, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            weights.directory, gguf_file=weights.filename, local_files_only=True
        )
        # The tensors are already dequantized to fp32; only the GGUF marker blocks save_pretrained.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(target, safe_serialization=True)
        tokenizer.save_pretrained(target)
    marker = {
        "format": CACHE_FORMAT,
        "model": MODEL_NAME,
        "gguf": str(weights.path),
        "gguf_sha256": weights.identity,
        "weights_version": weights.version,
    }
    (target / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def _share_like_umask(folder: Path) -> None:
    """mkdtemp makes the folder private; the cache should get the usual permissions."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for item in folder.iterdir():
        item.chmod(0o666 & ~umask)


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@contextlib.contextmanager
def _quiet_transformers():
    """No progress bars or advisory warnings from transformers while loading (the CLI prints its own line)."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _exclusive_lock(path: Path):
    """A cross-process lock (flock); where flock is missing, the atomic rename alone keeps the cache whole."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
