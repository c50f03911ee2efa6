"""A shard's manifest: what makes its output folder self-describing, so a merge can check it alone.

`labtax generate --shard I/N` writes `labtax-shard.json` at the root of its --output twice: `started` before
any teacher call (so an interrupted shard is recognised as one, with the command that resumes it) and
`complete` once every leaf folder is written. It records the shard (I/N), its leaves with their content
hashes and the hash of the samples file written for each, everything that decides the samples (the settings,
the teacher's and the judge's name and model, the git commit, the labtax version and its prompt files) with
its hash, the whole selection (every leaf path with its content hash, and the skipped paths) with its hash (so
shards of different selections or taxonomy states are never merged, and a merge knows which leaves each shard
owns), the run metadata the summary needs, counts, and the arguments that re-run the shard. A merge recomputes
both hashes from what is recorded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labtax.errors import LabtaxError
from labtax.fileio import write_json_atomic
from labtax.records.layout import SHARD_MANIFEST, Layout
from labtax.records.types import RunSummary
from labtax.scale.shards import MAX_SHARDS, Shard

MANIFEST = SHARD_MANIFEST
FORMAT = 2  # 2: the whole selection is recorded (`selection`), not only its hash
STARTED, COMPLETE = "started", "complete"
PROMPTS = Path(__file__).resolve().parent.parent / "generate" / "prompts"


def _hash(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def prompts_hash() -> str:
    """The prompt files' contents: two labtax builds with the same version but edited prompts differ here."""
    files = sorted(PROMPTS.glob("*.yaml"))
    return _hash({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files})


def config_of(
    settings: Any,
    teacher: str,
    model: str,
    commit: str | None,
    judge: str | None = None,
    judge_model: str | None = None,
) -> dict:
    """Everything that decides a leaf's samples besides the leaf itself; shards must agree on all of it. The
    judge is recorded as summary.json's run records it: the teacher's name and model when no separate judge
    (`judge` None) answers the judge stages. The endpoint URLs are left out on purpose: they can carry
    credentials and may differ between runners."""
    from labtax import __version__

    return {
        "labtax": __version__,
        "prompts": prompts_hash(),
        "settings": dataclasses.asdict(settings),
        "teacher": teacher,
        "model": model,
        "judge": judge if judge is not None else teacher,
        "judge_model": judge_model if judge is not None else model,
        "commit": commit,
    }


def config_hash(config: dict) -> str:
    return _hash(config)


def selection_of(leaves: list, skipped: list[dict]) -> dict:
    """The whole run's selection (before sharding), as the manifest records it: every leaf as [path, content
    hash], and the skipped paths, each sorted. A merge derives each shard's own leaves from it."""
    return {
        "leaves": [[path, content] for path, content in sorted((leaf.path, leaf.content_hash) for leaf in leaves)],
        "skipped": sorted(s["leaf"] for s in skipped),
    }


def selection_hash(selection: dict) -> str:
    """The hash of a selection_of record: shards of one run agree on it."""
    return _hash(selection)


def owned(selection: dict, shard: Shard) -> tuple[dict[str, str], set[str]]:
    """The leaves ({path: content hash}) and skipped paths of a recorded selection that `shard` owns."""
    leaves = {path: content for path, content in selection["leaves"] if shard.owns(path)}
    return leaves, {path for path in selection["skipped"] if shard.owns(path)}


def generate_args(params: dict) -> list[str]:
    """The `labtax generate` arguments that select and configure the same work (from click's parsed params),
        without --shard and --output: the retry plan adds those. The endpoints (--base-url, --judge-base-url) are left
    out, as in the manifest's config: they come from the environment or [tool.labtax.judge] as before."""
    args = [str(p) for p in params.get("paths") or ()]
    if params.get("base"):
        args += ["--base", str(params["base"])]
    elif params.get("changed"):
        args.append("--changed")
    if params.get("root"):
        args += ["--root", str(params["root"])]
    args += ["-n", str(params["num_samples"]), "--max-attempts", str(params["max_attempts"])]
    if params.get("offline"):
        args.append("--offline")
    if params.get("model"):
        args += ["--model", str(params["model"])]
    if params.get("judge_model"):
        args += ["--judge-model", str(params["judge_model"])]
    if params.get("judge_tokenizer"):
        args += ["--judge-tokenizer", str(params["judge_tokenizer"])]
    if params.get("calibrate") is False:
        args.append("--no-calibrate")
    if params.get("keep_unvetted"):
        args.append("--keep-unvetted")
    return args


def retry_command(args: list[str], shard: Shard, output: str) -> str:
    import shlex

    return shlex.join(["labtax", "generate", *args, "--shard", str(shard), "--output", output])


@dataclass
class ShardRun:
    """One shard's manifest, written at the start and at the end of its run."""

    output: Path
    shard: Shard
    config: dict
    selection: dict  # selection_of the whole run
    leaves: list  # this shard's Leaf objects
    skipped: list[dict]  # this shard's skipped leaves
    args: list[str]  # generate_args
    started: str = ""
    data: dict = field(default_factory=dict)

    def begin(self, started: str) -> None:
        """Write the `started` manifest; refuse a folder that holds another shard's or another config's output."""
        self.started = started
        earlier, _ = read(self.output)
        if earlier is not None and (
            earlier["shard"] != {"index": self.shard.index, "count": self.shard.count}
            or earlier["config_hash"] != config_hash(self.config)
        ):
            was = f"shard {earlier['shard']['index']}/{earlier['shard']['count']}"
            raise LabtaxError(
                f"--output {self.output} holds the output of {was} with other settings or another shard; pass a fresh --output for shard {self.shard}"
            )
        self._write(STARTED)

    def finish(self, summary: RunSummary | None) -> dict:
        """Write the `complete` manifest, after every leaf folder is written (summary is None for an empty shard)."""
        from labtax.generate.run import now_iso

        done = summary["leaves"] if summary else {}
        mine = [done[leaf.path] for leaf in self.leaves if leaf.path in done]
        counts = {
            "requested": sum(leaf.get("requested", 0) for leaf in mine),
            "accepted": sum(leaf.get("accepted", 0) for leaf in mine),
            "teacher_calls": sum(leaf.get("teacher_calls", 0) for leaf in mine),
            "cached_calls": sum(leaf.get("cached_calls", 0) for leaf in mine),
            "rejected": sum(sum(leaf.get("rejected", {}).values()) for leaf in mine),
            "cache_entries": count_cache(self.output),
        }
        self._write(COMPLETE, finished=now_iso(), run=summary["run"] if summary else None, counts=counts)
        return self.data

    def _write(self, status: str, **extra: Any) -> None:
        self.data = {
            "format": FORMAT,
            "status": status,
            "shard": {"index": self.shard.index, "count": self.shard.count},
            "config": self.config,
            "config_hash": config_hash(self.config),
            "selection": self.selection,
            "selection_hash": selection_hash(self.selection),
            "leaves": [
                {
                    "leaf": leaf.path,
                    "content_hash": leaf.content_hash,
                    "samples_sha256": samples_hash(self.output, leaf.path),
                }
                if status == COMPLETE
                else {"leaf": leaf.path, "content_hash": leaf.content_hash}
                for leaf in sorted(self.leaves, key=lambda leaf: leaf.path)
            ],
            "skipped": self.skipped,
            "args": self.args,
            "retry": retry_command(self.args, self.shard, str(self.output)),
            "started": self.started,
            **extra,
        }
        write_json_atomic(self.output / MANIFEST, self.data)


def start(
    output: Path,
    shard: Shard,
    whole: Any,
    chosen: Any,
    settings: Any,
    teacher: Any,
    params: dict,
    judge: Any = None,
) -> ShardRun:
    """Begin a shard's run for `labtax generate --shard`: `whole` and `chosen` are the run's and the shard's
    LeafSelection, `teacher` the TeacherInfo and `judge` the separate judge's (None: the teacher judges); an
    empty shard is finished at once (it is complete with no leaves)."""
    from labtax.changes.git import head_commit
    from labtax.generate.run import now_iso

    commit = head_commit(whole.leaves[0].root) if whole.leaves else None
    run = ShardRun(
        Path(output),
        shard,
        config_of(
            settings, teacher.name, teacher.model, commit, judge.name if judge else None, judge.model if judge else None
        ),
        selection_of(whole.leaves, whole.skipped),
        chosen.leaves,
        chosen.skipped,
        generate_args(params),
    )
    run.begin(now_iso())
    if not chosen.leaves:
        run.finish(None)
    return run


def leaf_dir(output: Path, leaf_path: str) -> Path:
    return Layout(output).leaf_dir(leaf_path)


def samples_hash(output: Path, leaf_path: str) -> str | None:
    """sha256 of the leaf's samples.jsonl as written (None when it is missing)."""
    try:
        return hashlib.sha256(Layout(output).samples(leaf_path).read_bytes()).hexdigest()
    except OSError:
        return None


def count_cache(output: Path) -> int:
    folder = Layout(output).calls
    return sum(1 for _ in folder.glob("??/*.json")) if folder.is_dir() else 0


def read(folder: Path) -> tuple[dict | None, str | None]:
    """(manifest, None), or (None, why it cannot be used): missing, unreadable, not this format."""
    path = Path(folder) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, f"no {MANIFEST} (not a shard's output, or the shard never started)"
    except (OSError, ValueError) as exc:
        return None, f"{MANIFEST} cannot be read ({exc})"
    shard = data.get("shard") if isinstance(data, dict) else None
    if (
        not isinstance(data, dict)
        or data.get("format") != FORMAT
        or not isinstance(shard, dict)
        or not all(isinstance(shard.get(k), int) and not isinstance(shard.get(k), bool) for k in ("index", "count"))
        or not 1 <= shard["index"] <= shard["count"]
        or not isinstance(data.get("leaves"), list)
        or not all(isinstance(e, dict) and isinstance(e.get("leaf"), str) for e in data["leaves"])
        or not isinstance(data.get("skipped"), list)
        or not isinstance(data.get("config"), dict)
        or not isinstance(data.get("config_hash"), str)
        or not _is_selection(data.get("selection"))
        or not isinstance(data.get("selection_hash"), str)
        or not isinstance(data.get("args"), list)
    ):
        return None, f"{MANIFEST} is not a labtax shard manifest of format {FORMAT}"
    if shard["count"] > MAX_SHARDS:  # as --shard: 10^9 shards hung merge, one retry line for each missing one
        return None, (
            f"{MANIFEST} says {shard['count']} shards; a run has at most {MAX_SHARDS} (--shard I/N); "
            "regenerate the shards with a smaller N"
        )
    return data, None


def _is_selection(value: Any) -> bool:
    """A selection_of record: leaves as [path, content hash] string pairs, skipped as strings."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("leaves"), list)
        and all(
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)
            for pair in value["leaves"]
        )
        and isinstance(value.get("skipped"), list)
        and all(isinstance(path, str) for path in value["skipped"])
    )
