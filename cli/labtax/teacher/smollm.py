"""Load SmolLM2-135M-Instruct for the embedded teacher and for training: one loader, the same weights.

Reading the GGUF (dequantizing every tensor) takes ~20 s; loading safetensors takes well under a second.
So the first run converts the GGUF once into a user cache dir, and every later run loads from there. Two
first runs at once are safe: a file lock lets one build (in a temp dir, renamed into place atomically)
while the other waits and then loads the finished cache.

The cache is keyed by the GGUF's sha256, the transformers major version and CACHE_FORMAT: what
`save_pretrained` writes differs between transformers majors (5.x stores the rope theta only inside
`rope_parameters`, which 4.x ignores, silently falling back to 10000 instead of 100000; 5.x names its
tokenizer class `TokenizersBackend`, which 4.x cannot load). The written config and tokenizer files are
also made readable by both (`_portable_files`), so other tools can load the folder as a plain checkpoint.

torch and transformers are imported inside the functions: `labtax lint` and `labtax teacher info` never
pay for them. Nothing here downloads anything (HF_HUB_OFFLINE, local_files_only).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
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
from labtax.teacher.weights import DISTRIBUTION, HUB_ID, MODEL_NAME, GGUFWeights, locate_gguf

CACHE_FORMAT = 2  # bump when the cached layout changes: old caches are then simply not used
MARKER = "labtax-cache.json"  # written last, inside the temp dir: present means the cache is complete
# A class every transformers since 4.x loads from tokenizer.json alone (5.x maps it to its TokenizersBackend).
PORTABLE_TOKENIZER_CLASS = "PreTrainedTokenizerFast"
# Loading arguments transformers 5 writes into tokenizer_config.json: true of this build only, never of the files.
LOAD_ONLY_KEYS = ("is_local", "local_files_only")
INSTALL_EXTRA = "pip install 'labtax[local]' torch==2.13.0"
LOCAL_MODULES = ("torch", "transformers", "gguf", "safetensors")


def transformers_major() -> int | None:
    """The installed transformers' major version (read from its metadata, not imported), None if absent."""
    try:
        return int(importlib.metadata.version("transformers").split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None


def cache_key(weights: GGUFWeights, major: int | None = None) -> str:
    """The cache folder's name: the GGUF, the transformers major that writes and reads it, the layout."""
    major = transformers_major() if major is None else major
    return f"smollm2-135m-instruct-{weights.identity[:16]}-tf{major if major is not None else 'none'}-v{CACHE_FORMAT}"


def cache_dir_for(weights: GGUFWeights) -> Path:
    return cache_root() / cache_key(weights)


def is_complete(directory: Path, weights: GGUFWeights) -> bool:
    """A finished cache for these weights, this layout and this transformers major (its marker says so)."""
    try:
        marker = json.loads((directory / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and marker.get("format") == CACHE_FORMAT
        and marker.get("gguf_sha256") == weights.identity
        and marker.get("transformers_major") == transformers_major()
    )


def base_model_reference(weights: GGUFWeights | None = None) -> dict:
    """What names the base model anywhere: the Hub id plus the exact weights (no path of this machine)."""
    weights = weights or locate_gguf()
    return {
        "base_model": HUB_ID,
        "weights": {
            "distribution": DISTRIBUTION,
            "version": weights.version,
            "file": weights.filename,
            "sha256": weights.identity,
        },
        "cache_key": cache_key(weights),
    }


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
        "cached": is_complete(directory, weights),
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
    if is_complete(final, weights):
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
        if is_complete(final, weights):  # another process built it while we waited
            return CachedModel(final, built=False, seconds=time.monotonic() - started)
        say = log or _stderr
        say(f"labtax: converting {weights.filename} into {final} (once, about 20 s)")
        staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{final.name}.build-"))
        try:
            with _gguf_bar_only_in_a_terminal():
                _convert(weights, staging)
            say(f"labtax: converted {weights.filename} in {time.monotonic() - started:.0f} s")
            _share_like_umask(staging)
            if final.exists():  # a leftover without a matching marker: incomplete or foreign, replace it
                shutil.rmtree(final)
            os.rename(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return CachedModel(final, built=True, seconds=time.monotonic() - started)


def export_checkpoint(target: Path, *, log=None) -> Path:
    """The converted model as a plain transformers folder at `target` (a new or an empty folder): config,
    safetensors weights, tokenizer, chat template, generation config; not labtax's cache marker. Written
    beside `target` and renamed into place, so `target` is never left half-written."""
    target = Path(target)
    if target.is_symlink() or (target.exists() and (not target.is_dir() or any(target.iterdir()))):
        raise LabtaxError(f"{target} exists and is not an empty folder; name a new folder to export the model into")
    cached = ensure_cache(log=log)
    parent = target.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{target.name}.export-"))
    except OSError as exc:
        raise LabtaxError(f"cannot create {target}: {exc}") from None
    try:
        for item in sorted(cached.path.iterdir()):
            if item.is_file() and item.name != MARKER:
                shutil.copyfile(item, staging / item.name)
        _share_like_umask(staging)
        if target.exists():  # empty: checked above
            target.rmdir()
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


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
        model.hf_quantizer = None  # type: ignore[assignment]  # an nn.Module attribute to transformers' stubs
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(target, safe_serialization=True)
        tokenizer.save_pretrained(target)
    _portable_files(target)
    write_marker(weights, target)


def write_marker(weights: GGUFWeights, target: Path) -> None:
    """The last file of a build: what the folder holds, and for which transformers major it was written."""
    import transformers

    marker = {
        "format": CACHE_FORMAT,
        "model": MODEL_NAME,
        "hub_id": HUB_ID,
        "gguf": str(weights.path),
        "gguf_sha256": weights.identity,
        "weights_version": weights.version,
        "transformers_version": transformers.__version__,
        "transformers_major": transformers_major(),
    }
    (target / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def _portable_files(target: Path) -> None:
    """Make config.json and tokenizer_config.json mean the same to transformers 4.x and 5.x.

    config: 5.x keeps the rope theta only in `rope_parameters`; 4.x reads the top-level `rope_theta` and
    defaults it to 10000, so both are written. tokenizer: 5.x names the class `TokenizersBackend`; the
    generic fast class loads the same tokenizer.json in both. The chat template also goes into
    tokenizer_config.json, where transformers before 4.50 (no chat_template.jinja) looks for it.
    """
    config_path, tokenizer_path = target / "config.json", target / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    rope = config.get("rope_parameters") if isinstance(config.get("rope_parameters"), dict) else {}
    theta = rope.get("rope_theta", config.get("rope_theta"))
    if theta is None:
        raise LabtaxError(f"the converted config in {target} names no rope theta; cannot write a portable cache")
    config["rope_theta"] = theta
    if not rope and not config.get("rope_scaling"):  # written by 4.x: give 5.x its own form too
        config["rope_parameters"] = {"rope_type": "default", "rope_theta": theta}
    config.setdefault("torch_dtype", config.get("dtype", "float32"))  # 4.x before 4.56 reads this name
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    tokenizer = json.loads(tokenizer_path.read_text(encoding="utf-8"))
    tokenizer["tokenizer_class"] = PORTABLE_TOKENIZER_CLASS
    for key in LOAD_ONLY_KEYS:
        tokenizer.pop(key, None)
    template = target / "chat_template.jinja"
    if "chat_template" not in tokenizer and template.is_file():
        tokenizer["chat_template"] = template.read_text(encoding="utf-8")
    tokenizer_path.write_text(json.dumps(tokenizer, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


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
def _gguf_bar_only_in_a_terminal():
    """transformers draws its GGUF dequantizing bar with tqdm whatever its logging says: in a log (no terminal on
    stderr) that is dozens of carriage-return frames, so there the bar is off and ensure_cache's two lines (the
    start, and the end with its time) are all the conversion writes."""
    try:
        import transformers.modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:  # a transformers that reads no GGUF fails in _convert, with its own message
        yield
        return
    drawn = getattr(gguf_utils, "tqdm", None)
    if drawn is None or _stderr_is_a_terminal():
        yield
        return

    def quiet(*args, **kwargs):
        return drawn(*args, **{**kwargs, "disable": True})

    gguf_utils.tqdm = quiet
    try:
        yield
    finally:
        gguf_utils.tqdm = drawn


def _stderr_is_a_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed
        return False


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
