"""`labtax merge OUT SHARD_DIR...`: shard outputs -> one output folder, as if one process had run them all.

The per-leaf folders are the source of truth (generate/artifacts.py), so a merge copies each shard's leaf
folders (only the leaves its manifest lists, files as written) and unions the call caches (content-addressed:
an entry already present is the same call and is kept), then rebuilds the bucket files, rejected.jsonl,
heldout.jsonl and summary.json with artifacts.write_run, which sorts by leaf path. The data files are then
byte-identical to a single run's over the same leaves with the same teacher answers; summary.json is too,
except the wall-clock fields no two runs share (see docs/scale.md and `combine_runs`).

Nothing is written unless every shard 1..N is present and complete: otherwise the merge lists what is
missing and the exact commands that produce it (the retry plan). Nor unless every manifest agrees with itself
(its config and selection hash to the recorded hashes) and with the selection (each shard lists exactly the
leaves and skipped leaves of the selection that it owns, with their content hashes): a shard that does not
is refused (exit 2) with the command that regenerates it.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labtax.errors import LabtaxError
from labtax.fileio import check_replaceable, write_json_atomic
from labtax.records.layout import LEAF_RECORD, Layout
from labtax.records.types import RunSummary
from labtax.scale.manifest import (
    COMPLETE,
    config_hash,
    leaf_dir,
    owned,
    read,
    retry_command,
    samples_hash,
    selection_hash,
)
from labtax.scale.shards import Shard, shard_of
from labtax.taxonomy.kinds import LEAF_FILE

# Run-level summary fields (generate/run.py) and how shards combine into them. Settings must agree; a new
# setting added to the run record belongs in RUN_EQUAL, else it is combined as a count (numbers summed).
RUN_EQUAL = (
    "teacher",
    "model",
    "judge",
    "judge_model",
    "commit",
    "num_samples",
    "max_attempts",
    "dedup_threshold",
    "keep_unvetted",
    "judge_scores",
)
# summary.json's wall-clock fields, which no two runs share: byte-identity with a single run covers everything
# else (docs/scale.md). A merge takes them from the shards (combine_runs, and the leaves' own files).
TIMING_RUN = ("started", "seconds")
TIMING_LEAF = ("seconds", "generated_at")
# Per leaf and in the totals: what the last run that wrote a leaf spent. Equal to a single run's when every
# shard ran once on a cold cache, as the single run did; a resumed shard reports its own run's calls.
CALL_COUNTS = ("teacher_calls", "cached_calls", "tokens")
CACHE_ENTRY = re.compile(r"[0-9a-f]{64}\.json")
SHA256 = re.compile(r"[0-9a-f]{64}")


class ShardsIncomplete(LabtaxError):
    """Some shards are missing or unfinished; the message is the retry plan."""

    exit_code = 1


@dataclass
class ShardDir:
    folder: Path
    manifest: dict

    @property
    def shard(self) -> Shard:
        return Shard(self.manifest["shard"]["index"], self.manifest["shard"]["count"])


@dataclass
class Inspection:
    shards: list[ShardDir] = field(default_factory=list)  # complete ones, by index
    problems: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)


@dataclass
class MergeResult:
    summary: RunSummary
    shards: int
    leaves: int
    cache_copied: int
    cache_present: int


def combine_runs(
    runs: list[dict], *, skipped: list[dict], started: str | None = None, seconds: float | None = None
) -> dict:
    """The run record of several runs over disjoint leaves, as a deterministic function of theirs: settings
    must agree, lists (leaves, pipeline versions) are sorted unions, numbers (per-run counts) are summed,
    `skipped` is the given union; `started` is the earliest start and `seconds` the longest run unless given
    (the wall clock of the whole, which a driver knows and a merge does not). Keys keep the order of the
    first run's record, so the file's bytes follow generate's own layout."""
    if not runs:
        return {"started": started, "seconds": seconds or 0.0, "leaves": [], "skipped": skipped}
    keys = list(dict.fromkeys(key for run in runs for key in run))
    out: dict[str, Any] = {}
    for key in keys:
        values = [run[key] for run in runs if key in run]
        if key == "started":
            out[key] = started if started is not None else min(str(v) for v in values)
        elif key == "seconds":
            out[key] = seconds if seconds is not None else max(float(v) for v in values)
        elif key == "skipped":
            out[key] = skipped
        elif key == "judge_logprobs":  # true where any run's judge gave them; null where no run judged
            known = [v for v in values if isinstance(v, bool)]
            out[key] = any(known) if known else None
        elif key in RUN_EQUAL:
            if any(v != values[0] for v in values):
                raise LabtaxError(
                    f"the shards disagree on run.{key} ({', '.join(sorted({str(v) for v in values}))}); generate every shard with the same settings, teacher, judge and commit"
                )
            out[key] = values[0]
        else:
            out[key] = _combine(values)
    return out


def _combine(values: list) -> Any:
    if all(isinstance(v, list) for v in values):
        seen: dict[str, Any] = {}
        for value in values:
            for item in value:
                seen.setdefault(_sort_key(item), item)
        return [seen[k] for k in sorted(seen)]
    if all(isinstance(v, dict) for v in values):
        keys = list(dict.fromkeys(k for v in values for k in v))
        return {k: _combine([v[k] for v in values if k in v]) for k in keys}
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return sum(values)
    if all(v == values[0] for v in values):
        return values[0]
    return min(values, key=_sort_key)


def _sort_key(item: Any) -> str:
    import json

    return item if isinstance(item, str) else json.dumps(item, sort_keys=True, default=str)


def safe_leaf_path(path: str) -> bool:
    """A taxonomy-relative leaf path that stays inside an output folder (manifests come from CI artifacts)."""
    parts = path.split("/")
    return (
        len(parts) >= 2
        and parts[-1] == LEAF_FILE
        and all(p and p not in (".", "..") and not p.startswith(".") and "\\" not in p and "\0" not in p for p in parts)
    )


def inspect(folders: Iterable[Path]) -> Inspection:
    """Read every shard folder's manifest and check the set: each manifest's hashes recomputed, one N, one
    configuration, one selection, every shard 1..N present and complete with the leaf files its manifest
    names, and each complete shard holding exactly its part of the selection. Inconsistent shards are an
    error (exit 2, with the command that regenerates a shard at fault); missing or unfinished ones become
    problems with retry commands."""
    result = Inspection()
    loaded: list[ShardDir] = []
    unreadable: list[Path] = []
    for folder in folders:
        manifest, why = read(folder)
        if manifest is None:
            result.problems.append(f"{folder}: {why}")
            unreadable.append(folder)
        else:
            loaded.append(ShardDir(Path(folder), manifest))
    if not loaded:
        raise ShardsIncomplete(
            "no shard output to merge: "
            + "; ".join(result.problems)
            + "; generate each shard with `labtax generate --shard I/N --output DIR`"
        )
    for shard_dir in loaded:
        _check_hashes(shard_dir)
    for field_name, what in (
        ("count", "a different number of shards"),
        ("config_hash", "different settings, teacher, judge, commit or labtax version"),
        ("selection_hash", "a different selection of leaves (other paths, --changed base, or leaf contents)"),
    ):
        values = {
            (str(s.manifest["shard"]["count"]) if field_name == "count" else str(s.manifest[field_name])): s
            for s in loaded
        }
        if len(values) > 1:
            listed = ", ".join(f"{s.folder} (shard {s.shard})" for s in values.values())
            raise LabtaxError(
                f"these shards were generated with {what} and cannot be merged: {listed}; regenerate them alike"
            )
    count = loaded[0].shard.count
    args = [str(a) for a in loaded[0].manifest["args"]]
    by_index: dict[int, ShardDir] = {}
    for shard_dir in loaded:
        index = shard_dir.shard.index
        if index in by_index:
            raise LabtaxError(
                f"shard {index}/{count} is given twice ({by_index[index].folder} and {shard_dir.folder}); pass each shard folder once"
            )
        by_index[index] = shard_dir
        problem = _incomplete(shard_dir)
        if problem:
            result.problems.append(f"{shard_dir.folder}: shard {shard_dir.shard} {problem}")
            result.retry.append(retry_command(args, shard_dir.shard, str(shard_dir.folder)))
            continue
        wrong = _against_selection(shard_dir)
        if wrong:
            raise LabtaxError(
                f"cannot merge: {shard_dir.folder}: shard {shard_dir.shard} {wrong}; nothing was written. "
                f"Regenerate the shard: {retry_command(args, shard_dir.shard, str(shard_dir.folder))}"
                " (from the taxonomy root, with the same teacher and judge endpoints), then run the merge again"
            )
        result.shards.append(shard_dir)
    template = loaded[0]
    for index in range(1, count + 1):
        if index not in by_index:
            shard = Shard(index, count)
            result.problems.append(f"shard {shard} is missing")
            result.retry.append(retry_command(args, shard, str(_guess_folder(template, shard))))
    result.shards.sort(key=lambda s: s.shard.index)
    return result


def _incomplete(shard_dir: ShardDir) -> str | None:
    manifest, shard = shard_dir.manifest, shard_dir.shard
    if manifest.get("status") != COMPLETE:
        return "did not finish (its manifest says started; re-running it replays every finished call from its cache)"
    for entry in manifest["leaves"]:
        path = entry["leaf"]
        if not safe_leaf_path(path):
            return f"lists a leaf path that is not a taxonomy leaf path: {path!r}"
        if shard_of(path, shard.count) != shard.index:
            return f"lists {path}, which belongs to shard {shard_of(path, shard.count)}/{shard.count}"
        recorded = entry.get("samples_sha256")
        if not isinstance(recorded, str) or not SHA256.fullmatch(recorded):
            return (
                f"is incomplete: its manifest records no samples_sha256 for {path} "
                "(a complete shard records one for every leaf: the manifest was damaged or edited)"
            )
        linked = _linked(shard_dir.folder, leaf_dir(shard_dir.folder, path))
        if linked is not None:
            return (
                f"holds {linked} as a link; links in a shard are not followed (a leaf's files are the shard's own): "
                "copy the shard's files themselves"
            )
        if (
            samples_hash(shard_dir.folder, path) != entry.get("samples_sha256")
            or not Layout(shard_dir.folder).leaf_record(path).is_file()
        ):
            return f"is incomplete: {path}'s files are missing or differ from its manifest (a partial upload or copy?)"
    return None


def _check_hashes(shard_dir: ShardDir) -> None:
    """The manifest's config and selection hash to the hashes it records (shards are compared by those)."""
    manifest = shard_dir.manifest
    for name, recomputed in (
        ("config", config_hash(manifest["config"])),
        ("selection", selection_hash(manifest["selection"])),
    ):
        if manifest[f"{name}_hash"] != recomputed:
            retry = retry_command([str(a) for a in manifest["args"]], shard_dir.shard, str(shard_dir.folder))
            raise LabtaxError(
                f"cannot merge: {shard_dir.folder}: shard {shard_dir.shard}'s manifest records a {name}_hash that "
                f"its {name} does not hash to (the manifest was damaged or edited); nothing was written. "
                f"Regenerate the shard: {retry} (from the taxonomy root, with the same teacher and judge "
                "endpoints), then run the merge again"
            )


def _against_selection(shard_dir: ShardDir) -> str | None:
    """What is wrong with a complete shard's lists against the recorded selection (the part of it the shard
    owns, by the path hash), or None: every owned leaf listed once with the selection's content hash, no
    other leaf, and the owned skipped leaves."""
    manifest = shard_dir.manifest
    leaves, skipped = owned(manifest["selection"], shard_dir.shard)
    listed: dict[str, Any] = {}
    for entry in manifest["leaves"]:
        if entry["leaf"] in listed:
            return f"lists {entry['leaf']} twice"
        listed[entry["leaf"]] = entry.get("content_hash")
    for path in sorted(leaves):
        if path not in listed:
            return f"does not hold {path}, a leaf of the selection that this shard owns (its manifest leaves it out)"
    for path, content in sorted(listed.items()):
        if path not in leaves:
            return f"holds {path}, which is not a leaf of the selection"
        if content != leaves[path]:
            return f"holds {path} with other contents than the selection's (content_hash {content!r}, not {leaves[path]!r})"
    noted = {s.get("leaf") for s in manifest["skipped"] if isinstance(s, dict)}
    if noted != skipped or len(manifest["skipped"]) != len(skipped):
        missing, extra = sorted(skipped - noted), sorted(str(p) for p in noted - skipped)
        return (
            "lists other skipped leaves than the selection's that it owns"
            + (f" (missing: {', '.join(missing)})" if missing else "")
            + (f" (not in the selection: {', '.join(extra)})" if extra else "")
        )
    return None


def _linked(base: Path, folder: Path) -> Path | None:
    """The first link on the way from `base` down to `folder` (the leaf's folder itself included), if any."""
    here = base
    for part in folder.relative_to(base).parts:
        here = here / part
        if here.is_symlink():
            return here
    return None


def _guess_folder(template: ShardDir, shard: Shard) -> Path:
    """Where a missing shard's output would go: beside the others, named like them when their name shows the
    index (shard-2 -> shard-3), else shard-I-of-N."""
    name, index = template.folder.name, str(template.shard.index)
    numbers = re.findall(r"\d+", name)
    if numbers.count(index) == 1:
        return template.folder.with_name(re.sub(rf"(?<!\d){index}(?!\d)", str(shard.index), name, count=1))
    return template.folder.with_name(f"shard-{shard.index}-of-{shard.count}")


def merge(out: Path, folders: list[Path]) -> MergeResult:
    """Merge complete shards into `out` (ShardsIncomplete with the retry plan when any is missing or unfinished)."""
    from labtax.generate import artifacts
    from labtax.generate.run import BUCKETS, now_iso

    out = Path(out)
    _check_out(out, folders)
    found = inspect(folders)
    if found.problems:
        plan = "\n".join(f"  {line}" for line in found.problems)
        commands = "\n".join(f"  {line}" for line in found.retry)
        raise ShardsIncomplete(
            f"cannot merge: not every shard is complete; nothing was written to {out}\n{plan}\n"
            + (
                f"retry plan (from the taxonomy root, with the same teacher and judge endpoints):\n{commands}\n"
                if commands
                else ""
            )
            + f"then run the merge again: labtax merge {out} SHARD_DIR..."
        )
    started = now_iso()
    copied = present = leaves = 0
    with artifacts.output_lock(out, started):
        for shard_dir in found.shards:
            for entry in shard_dir.manifest["leaves"]:
                copy_leaf(leaf_dir(shard_dir.folder, entry["leaf"]), out, entry["leaf"])
                leaves += 1
            new, old = union_cache(Layout(shard_dir.folder).calls, Layout(out).calls)
            copied, present = copied + new, present + old
        runs = [s.manifest["run"] for s in found.shards if isinstance(s.manifest.get("run"), dict)]
        skipped = sorted(
            (s for shard_dir in found.shards for s in shard_dir.manifest["skipped"] if isinstance(s, dict)),
            key=lambda s: str(s.get("leaf")),
        )
        summary = artifacts.write_run(out, BUCKETS, combine_runs(runs, skipped=skipped))
        first = found.shards[0].manifest
        write_json_atomic(
            Layout(out).merge_record,
            {
                "merged": started,
                "count": first["shard"]["count"],
                "config_hash": first["config_hash"],
                "selection_hash": first["selection_hash"],
                "shards": [
                    {"shard": str(s.shard), "folder": str(s.folder), "leaves": len(s.manifest["leaves"])}
                    for s in found.shards
                ],
            },
        )
    return MergeResult(summary, len(found.shards), leaves, copied, present)


def _check_out(out: Path, folders: list[Path]) -> None:
    target = out.resolve()
    for folder in folders:
        source = Path(folder).resolve()
        if target == source or source in target.parents or target in source.parents:
            raise LabtaxError(
                f"OUT {out} and the shard folder {folder} overlap; merge into a folder of its own (e.g. generated/)"
            )


def leaf_files(folder: Path) -> list[Path]:
    """The regular files directly in a leaf folder (no subfolder, link or hidden temp file), leaf.json last:
    a copy interrupted midway leaves a leaf.json that does not match, which the rebuild notices."""
    try:
        entries = [Path(e.path) for e in os.scandir(folder) if e.is_file(follow_symlinks=False)]
    except OSError:
        return []
    return sorted((p for p in entries if not p.name.startswith(".")), key=lambda p: (p.name == LEAF_RECORD, p.name))


def copy_leaf(source: Path, out: Path, leaf_path: str) -> None:
    """A shard's leaf folder -> the same place under `out`, every file replaced atomically."""
    target = leaf_dir(out, leaf_path)
    target.mkdir(parents=True, exist_ok=True)
    if target.resolve() != out.resolve() / leaf_path.rsplit("/", 1)[0]:
        raise LabtaxError(f"{target} leads outside {out} (a symlinked folder); remove it and merge again")
    for file in leaf_files(source):
        copy_atomic(file, target / file.name, durable=True)


def copy_atomic(source: Path, target: Path, *, durable: bool) -> None:
    """Copy to a temp file beside `target`, then rename over it (umask-honouring mode, like fileio's writes);
    a symlink or non-regular file at `target` is refused, never replaced."""
    check_replaceable(target)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    try:
        shutil.copyfile(source, tmp, follow_symlinks=False)
        if durable:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def union_cache(source: Path, target: Path) -> tuple[int, int]:
    """Copy the cache entries `target` lacks; (copied, already present). Only well-named regular files are
    taken (`<2 hex>/<64 hex>.json`, in the folder its name starts with); an entry already there is the same
    call, kept as it is. Not fsynced, like the cache's own writes: a torn entry reads as a miss."""
    copied = present = 0
    if not source.is_dir():
        return 0, 0
    for prefix in sorted(os.scandir(source), key=lambda e: e.name):
        if not prefix.is_dir(follow_symlinks=False) or not re.fullmatch(r"[0-9a-f]{2}", prefix.name):
            continue
        for entry in sorted(os.scandir(prefix.path), key=lambda e: e.name):
            if (
                not entry.is_file(follow_symlinks=False)
                or not CACHE_ENTRY.fullmatch(entry.name)
                or not entry.name.startswith(prefix.name)
            ):
                continue
            destination = target / prefix.name / entry.name
            if destination.exists():
                present += 1
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            copy_atomic(Path(entry.path), destination, durable=False)
            copied += 1
    return copied, present
