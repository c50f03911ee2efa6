"""Where the JSON Schemas are: below every stage, so that config (settings) and lint (leaves) both read them."""

from __future__ import annotations

from pathlib import Path


def _schema_dir() -> Path:
    """An installed package carries its copy of schema/ as labtax/schemas (see pyproject.toml); a source
    checkout or editable install reads schema/ itself, so there is one source of truth and no symlink."""
    here = Path(__file__).resolve().parent  # the labtax package
    packaged = here / "schemas"
    return packaged if packaged.is_dir() else here.parents[1] / "schema"


SCHEMA_DIR = _schema_dir()
