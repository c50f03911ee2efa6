"""Where labtax keeps what it can rebuild (model weights, fetched document repositories)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$LABTAX_CACHE_DIR, else $XDG_CACHE_HOME/labtax, else ~/.cache/labtax."""
    if os.environ.get("LABTAX_CACHE_DIR"):
        return Path(os.environ["LABTAX_CACHE_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "labtax"
    return Path.home() / ".cache" / "labtax"
