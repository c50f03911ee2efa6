"""Recipes and the mixer: which JSONL datasets make one training file, and how much of each.

A recipe is InstructLab's YAML format:

    datasets:
      - path: ../compositional.jsonl   # relative to the recipe file (or absolute)
        sampling_size: 1.0             # a float: that fraction of the file's rows; an int: that many rows
      - path: instructlab_community.jsonl
        sampling_size: 2000
    sys_prompt: You are a helpful assistant.   # optional: every row's system message becomes this text

Sampling is deterministic (the same recipe, files and seed give the same bytes, on any machine and Python):
rows are chosen and ordered by a seeded SHA-256 of their position, never by `random`'s state.
- `sampling_size` 1.0: every row, in file order; a float f: int(rows x f) rows (InstructLab's rule); an int n:
  n rows. Fewer rows than the file holds: distinct rows (InstructLab draws with replacement; labtax never
  repeats a row before every row is in). More: the whole file as many times as it fits, then distinct rows.
- Then the rows of every dataset, in recipe order, are shuffled together (as InstructLab shuffles its mix).

Rows. A labtax sample record (every key of schema/records/v2/sample.json present, a labtax kind) passes
unchanged (keys outside the schema dropped). Any other row needs only `messages` (InstructLab's community data
has `messages`, `metadata`, `id`) and becomes an *external replay* record: kind "external", leaf "", the row's
`id` kept when it is a non-empty string (else one derived from the messages), `provenance.pipeline` "external",
`provenance.document.path` the recipe's path for the file and `provenance.sample_index` its line number, every
other field "" / 0 / [] and a judge that never saw it (no criteria, probability null, `vetted` "unknown");
`metadata` is not kept. So every
output row follows one schema and `datasets` loads the output together with labtax's other files, while
`labtax train` knows these rows are replay that belongs to no leaf. (A file of external rows *alone* has
columns that are empty or null throughout, which `datasets` types as null and cannot cast when that file comes
first among several; mix external rows with labtax rows in one file, as a copy of the skills recipe does.)

Every problem (a missing file, bad YAML, a sampling_size that is not a number, a row without messages) is a
one-line LabtaxError naming the file (and line) and the fix.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from labtax.errors import LabtaxError
from labtax.records.jsonl import Damaged, dumps, rows
from labtax.records.messages import BAD_MESSAGE, NO_ANSWER, NO_LIST
from labtax.records.messages import problem as chat_problem

SAMPLE_KEYS = ("id", "messages", "leaf", "kind", "provenance", "judge")  # schema/records/v2/sample.json, in order
KINDS = ("knowledge", "foundational", "compositional")  # what labtax generates
EXTERNAL = "external"  # the kind of a row from a precomputed dataset: replay, no leaf's own
ROLES = ("system", "user", "assistant")  # as error messages name them (records.messages checks them)
DOCUMENT_KEYS = ("repo", "commit", "path", "chunk", "chunk_hash", "page", "heading")
FIX = "see `labtax mix --help` for the recipe format"
MAX_RECIPE_BYTES = 1024 * 1024
MAX_DATASET_BYTES = 4 * 1024**3  # the most one dataset file may be: it is read whole


@dataclass(frozen=True)
class Dataset:
    path: str  # as written in the recipe
    sampling_size: int | float


@dataclass(frozen=True)
class Recipe:
    path: Path  # the recipe file; dataset paths are relative to its folder
    datasets: tuple[Dataset, ...]
    sys_prompt: str = ""

    def resolve(self, dataset: Dataset) -> Path:
        return self.path.parent / dataset.path  # an absolute dataset path stays as it is


def parse_recipe(text: str, path: Path) -> Recipe:
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise LabtaxError(f"{where}: not valid YAML ({problem}); fix the recipe ({FIX})") from None
    if not isinstance(data, dict) or "datasets" not in data:
        raise LabtaxError(f"{path}: a recipe is a mapping with a `datasets:` list of {{path, sampling_size}}; {FIX}")
    entries = data["datasets"]
    if not isinstance(entries, list) or not entries:
        raise LabtaxError(f"{path}: `datasets` must be a non-empty list of {{path, sampling_size}} entries; {FIX}")
    datasets = []
    for number, entry in enumerate(entries, 1):
        where = f"{path}: datasets entry {number}"
        if not isinstance(entry, dict):
            raise LabtaxError(f"{where} is not a mapping; write it as `- path: FILE.jsonl` + `sampling_size: 1.0`")
        source = entry.get("path")
        if not isinstance(source, str) or not source.strip() or "\0" in source:
            raise LabtaxError(f"{where} has no `path` (a JSONL file, relative to the recipe file); add one")
        size = entry.get("sampling_size", 1.0)
        if isinstance(size, bool) or not isinstance(size, int | float) or not math.isfinite(size) or size < 0:
            raise LabtaxError(
                f"{where} ({source}): sampling_size must be a number >= 0 (a float: the fraction of the file's rows, "
                f"e.g. 1.0; an int: a number of rows, e.g. 500), got {size!r}"
            )
        datasets.append(Dataset(source, size))
    sys_prompt = data.get("sys_prompt")
    if sys_prompt is not None and not isinstance(sys_prompt, str):
        raise LabtaxError(f"{path}: sys_prompt must be text (the system message every row gets), got {sys_prompt!r}")
    return Recipe(path, tuple(datasets), sys_prompt or "")


def _read_text(path: Path, max_bytes: int) -> str:
    """A recipe's or a dataset's text through the repository file guard: a regular file (never a device such as
    /dev/zero, read until memory ran out, nor a FIFO, which hung), at most `max_bytes`. OSError subclasses as
    open() raises them, so callers name the fix as before."""
    from labtax.taxonomy.files import read_regular
    from labtax.taxonomy.problems import LoadProblem

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    if path.is_dir():
        raise IsADirectoryError(path)
    try:
        data = read_regular(Path(os.path.realpath(path)), max_bytes)
    except LoadProblem as problem:
        raise OSError(problem.message) from None
    return data.decode("utf-8")


def load_recipe(path: Path) -> Recipe:
    path = Path(path)
    try:
        text = _read_text(path, MAX_RECIPE_BYTES)
    except FileNotFoundError:
        raise LabtaxError(f"recipe not found: {path}; pass the path of a recipe YAML file ({FIX})") from None
    except IsADirectoryError:
        raise LabtaxError(f"recipe {path} is a folder; pass a recipe YAML file ({FIX})") from None
    except UnicodeDecodeError:
        raise LabtaxError(f"recipe {path} is not UTF-8 text; save it as UTF-8 YAML") from None
    except OSError as exc:
        raise LabtaxError(f"cannot read recipe {path}: {exc.strerror or exc}; check the path and permissions") from None
    return parse_recipe(text, path)


def dump_recipe(datasets: list[Dataset], comment: str = "", sys_prompt: str = "") -> str:
    """A recipe as YAML text (byte-stable): an optional comment header, then InstructLab's keys."""
    import yaml

    body: dict = {"datasets": [{"path": d.path, "sampling_size": d.sampling_size} for d in datasets]}
    if sys_prompt:
        body["sys_prompt"] = sys_prompt
    header = "".join(f"# {line}\n" if line else "#\n" for line in comment.splitlines())
    return header + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=120)


def _rank(seed: int, label: str, index: int) -> bytes:
    return hashlib.sha256(f"{seed}\0{label}\0{index}".encode()).digest()


def sample_indices(rows: int, size: int | float, seed: int, label: str) -> list[int]:
    """Which rows of a file of `rows` rows a sampling_size takes (see the module docstring), in file order."""
    if isinstance(size, float) and size == 1.0:
        return list(range(rows))
    wanted = size if isinstance(size, int) else int(rows * size)
    if not rows or not wanted:
        return []
    whole, rest = divmod(wanted, rows)
    chosen = sorted(sorted(range(rows), key=lambda i: _rank(seed, label, i))[:rest])
    return list(range(rows)) * whole + chosen


def mix(recipe: Recipe, seed: int = 0) -> list[dict]:
    """The recipe's rows: each dataset read and sampled, all shuffled together, sys_prompt applied."""
    rows: list[dict] = []
    for number, dataset in enumerate(recipe.datasets, 1):
        records = read_dataset(recipe.resolve(dataset), dataset.path, recipe.path)
        rows += [records[i] for i in sample_indices(len(records), dataset.sampling_size, seed, f"dataset {number}")]
    order = sorted(range(len(rows)), key=lambda i: _rank(seed, "shuffle", i))
    mixed = [rows[i] for i in order]
    return [with_system(row, recipe.sys_prompt) for row in mixed] if recipe.sys_prompt else mixed


def with_system(row: dict, prompt: str) -> dict:
    """The row with `prompt` as its system message (replacing any, else first), as InstructLab's sys_prompt."""
    messages = [dict(m) for m in row["messages"]]
    systems = [m for m in messages if m["role"] == "system"]
    for message in systems:
        message["content"] = prompt
    if not systems:
        messages.insert(0, {"role": "system", "content": prompt})
    return {**row, "messages": messages}


def read_dataset(path: Path, written: str, recipe: Path) -> list[dict]:
    """Every row of one recipe dataset, as labtax sample records (external rows converted)."""
    where = f"{recipe}: dataset {written}"
    try:
        text = _read_text(Path(path), MAX_DATASET_BYTES)
    except FileNotFoundError:
        raise LabtaxError(
            f"{where} not found (looked for {path}); fix the path (relative to the recipe file) or create the file"
        ) from None
    except IsADirectoryError:
        raise LabtaxError(f"{where} is a folder ({path}); name a JSONL file") from None
    except UnicodeDecodeError:
        raise LabtaxError(f"{where} ({path}) is not UTF-8 text; a dataset is JSON Lines in UTF-8") from None
    except OSError as exc:
        raise LabtaxError(
            f"{where}: cannot read {path}: {exc.strerror or exc}; check the path and permissions"
        ) from None
    records = []
    for number, row in rows(text.splitlines()):
        if isinstance(row, Damaged):
            raise LabtaxError(
                f"{path}:{number}: not valid JSON ({row.message}); a dataset has one JSON object per line"
            )
        records.append(to_record(row, f"{path}:{number}", written, number))
    return records


def check_messages(messages: object, where: str) -> None:
    found = chat_problem(messages, need_answer=True)
    if found is None:
        return
    raise LabtaxError(
        {
            NO_LIST: f"{where}: no 'messages' list; each row needs messages: [{{role, content}}, ...] (user and assistant turns)",
            BAD_MESSAGE: f"{where}: each message needs a role ({', '.join(ROLES)}) and string content; fix or drop the row",
            NO_ANSWER: f"{where}: no assistant answer to train on; fix or drop the row",
        }[found[0]]
    )


def is_labtax_record(row: dict) -> bool:
    """Every sample key, and a leaf that fits the kind (a leaf path for labtax's kinds, "" for external)."""
    if not all(key in row for key in SAMPLE_KEYS) or not isinstance(row["leaf"], str):
        return False
    return (row["kind"] in KINDS and bool(row["leaf"])) or (row["kind"] == EXTERNAL and not row["leaf"])


def to_record(row: object, where: str, source: str, line: int) -> dict:
    if not isinstance(row, dict):
        raise LabtaxError(f"{where}: expected a JSON object with 'messages', got {type(row).__name__}")
    check_messages(row.get("messages"), where)
    if is_labtax_record(row):
        return {key: row[key] for key in SAMPLE_KEYS}
    return external_record(row, source, line)


def external_record(row: dict, source: str, line: int) -> dict:
    messages = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
    given = row.get("id")
    sample_id = (
        given
        if isinstance(given, str) and given
        else hashlib.sha256(json.dumps(messages, ensure_ascii=False).encode()).hexdigest()[:16]
    )
    document: dict[str, str | int] = dict.fromkeys(DOCUMENT_KEYS, "")
    document.update(path=source, page=0)
    return {
        "id": sample_id,
        "messages": messages,
        "leaf": "",
        "kind": EXTERNAL,
        "provenance": {
            "leaf": "",
            "leaf_hash": "",
            "seed_hash": "",
            "sample_index": line,
            "teacher": "",
            "teacher_model": "",
            "judge": "",
            "judge_model": "",
            "pipeline": EXTERNAL,
            "prompt_version": "",
            "git_commit": "",
            "seed_examples": [],
            "context": "",
            "chunk": "",
            "document": document,
        },
        "judge": {"criteria": [], "probability": None, "vetted": "unknown"},
    }


def jsonl(records: list[dict]) -> str:
    """generate's own JSON Lines form (records.jsonl.dumps), so a mix of labtax files keeps their bytes per row."""
    return dumps(records)
