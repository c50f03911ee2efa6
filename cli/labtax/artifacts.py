"""Writing generation results: per-leaf samples, buckets, rejections, held-out seeds, summary.

Every file is written atomically; per-leaf files are written as soon as the leaf is done.
"""

from __future__ import annotations

import json
from pathlib import Path

from labtax.fileio import write_json_atomic, write_text_atomic


def jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records)


def write_leaf(output: Path, leaf_dir: Path, samples: list[dict], rejected: list[dict]) -> None:
    write_text_atomic(leaf_dir / "samples.jsonl", jsonl(samples))
    write_text_atomic(leaf_dir / "rejected.jsonl", jsonl(rejected))


def write_run(output: Path, buckets: dict[str, list[dict]], rejected: list[dict], heldout: list[dict], summary: dict) -> None:
    for bucket, records in buckets.items():
        write_text_atomic(output / f"{bucket}.jsonl", jsonl(records))
    write_text_atomic(output / "rejected.jsonl", jsonl(rejected))
    write_text_atomic(output / "heldout.jsonl", jsonl(heldout))
    write_json_atomic(output / "summary.json", summary)
