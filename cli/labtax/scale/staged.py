"""One leaf at a time into a shared output folder: the unit of work a Ray actor runs.

`run_generation` holds its output folder's lock and rebuilds the whole folder's artifacts at its end, so
several workers cannot run it on one folder. Each leaf therefore runs as a run of its own in a private
staging folder (`<output>/.labtax-staging/<hash of the leaf path>/`, hidden, so no rebuild reads it) whose
`.cache` is a link to the output's call cache: one content-addressed cache for every worker and for later
local runs. When the leaf is done its files are renamed into `<output>/<leaf folder>/` (leaf.json last, as
generate writes them) and the staging folder is removed; the driver rebuilds the artifacts once at the end.
A worker killed midway leaves a staging folder that the next attempt reuses (its finished calls are cached).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from labtax.fileio import check_replaceable
from labtax.records.layout import CACHE_DIR, STAGING, Layout
from labtax.scale.manifest import leaf_dir
from labtax.scale.merge import leaf_files


def staging_dir(output: Path, leaf_path: str) -> Path:
    return Path(output) / STAGING / hashlib.sha256(leaf_path.encode("utf-8")).hexdigest()[:24]


def prepare(output: Path, leaf_path: str) -> Path:
    """The leaf's staging folder, its `.cache` linked (relatively) to the output's cache folder."""
    staging = staging_dir(output, leaf_path)
    staging.mkdir(parents=True, exist_ok=True)
    Layout(output).calls.mkdir(parents=True, exist_ok=True)
    link = staging / CACHE_DIR
    if not link.is_symlink():
        if link.exists():  # a real folder left by an older layout: its entries are still good calls
            shutil.rmtree(link)
        os.symlink(os.path.join("..", "..", CACHE_DIR), link, target_is_directory=True)
    return staging


async def run_leaf(
    leaf: Any, teacher: Any, output: Path, settings: Any, *, judge: Any = None, cache: Any = None
) -> dict:
    """Generate one leaf into `output` through its staging folder; return its summary entry and run record.
    `cache`: the output's call cache, kept by the caller across leaves (None: listed again for this leaf)."""
    import asyncio

    from labtax.generate.run import run_generation

    output = Path(output)
    staging = await asyncio.to_thread(prepare, output, leaf.path)
    summary = await run_generation([leaf], teacher, staging, settings, judge=judge, cache=cache)
    await asyncio.to_thread(publish, staging, output, leaf.path)
    return {"leaf": leaf.path, "summary": summary["leaves"][leaf.path], "run": summary["run"]}


def publish(staging: Path, output: Path, leaf_path: str) -> None:
    """Rename the staged leaf files into the output's leaf folder (leaf.json last), then drop the staging
    folder (its `.cache` link first: the shared cache stays)."""
    source, target = leaf_dir(staging, leaf_path), leaf_dir(output, leaf_path)
    target.mkdir(parents=True, exist_ok=True)
    for file in leaf_files(source):
        destination = target / file.name
        check_replaceable(destination)
        os.replace(file, destination)
    (staging / CACHE_DIR).unlink(missing_ok=True)
    shutil.rmtree(staging, ignore_errors=True)
