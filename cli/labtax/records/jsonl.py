"""JSON Lines, read and written one way: every reader of labtax's .jsonl files (generate's rebuild, train,
mix, the comment) goes through `rows()`, and decides itself what a damaged line costs (an error naming the
fix, or one skipped row)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Damaged:
    """A line that is not JSON: `message` is json's own reason."""

    message: str


def rows(lines: Iterable[str]) -> Iterator[tuple[int, object]]:
    """(1-based line number, the parsed value, or Damaged) of every line that is not blank."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except ValueError as exc:
            yield number, Damaged(getattr(exc, "msg", str(exc)))


def objects(path: Path | None, limit: int | None = None) -> Iterator[dict]:
    """The JSON objects of a file, tolerantly: blank, damaged and non-object lines skipped, nothing when the
    file is missing or unreadable; at most `limit`."""
    if path is None or (limit is not None and limit <= 0):
        return
    try:
        handle = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed by the generator below
    except OSError:
        return
    count = 0
    with handle:
        for _, value in rows(handle):
            if not isinstance(value, dict):
                continue
            yield value
            count += 1
            if limit is not None and count >= limit:
                return


def dumps(records: Iterable[object]) -> str:
    """One compact JSON object a line, UTF-8 as is (the bytes every labtax .jsonl file has)."""
    return "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records)
