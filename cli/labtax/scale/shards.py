"""Which shard a leaf belongs to: a stable hash of its path, the same on every machine and Python.

Shards are numbered 1..N (`--shard 1/4` .. `--shard 4/4`, as a CI matrix counts them). A leaf belongs to shard
`1 + int(sha256(leaf path)[:8 bytes], big-endian) mod N`; the path is the taxonomy-relative POSIX path of its
qna.yaml. Python's hash() is salted per process, so it is never used.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from labtax.errors import LabtaxError

MAX_SHARDS = 10000


def shard_of(path: str, count: int) -> int:
    """The 1-based shard of a leaf path among `count` shards."""
    digest = hashlib.sha256(path.encode("utf-8")).digest()
    return 1 + int.from_bytes(digest[:8], "big") % count


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, path: str) -> bool:
        return shard_of(path, self.count) == self.index

    def split(self, paths: Iterable[str]) -> dict[int, list[str]]:
        """Every shard's paths (all N, empty ones too), in path order: what `--dry-run` shows."""
        buckets: dict[int, list[str]] = {i: [] for i in range(1, self.count + 1)}
        for path in sorted(paths):
            buckets[shard_of(path, self.count)].append(path)
        return buckets


def parse(text: str) -> Shard:
    """`I/N` with 1 <= I <= N; a LabtaxError naming the form otherwise."""
    match = re.fullmatch(r"\s*(\d{1,5})\s*/\s*(\d{1,5})\s*", text)
    if not match:
        raise LabtaxError(f"--shard {text!r}: write it as I/N, e.g. --shard 1/4 (shards are numbered 1 to N)")
    index, count = int(match.group(1)), int(match.group(2))
    if not 1 <= count <= MAX_SHARDS or not 1 <= index <= count:
        raise LabtaxError(
            f"--shard {text}: I must be between 1 and N, and N between 1 and {MAX_SHARDS} (shards are numbered 1 to N)"
        )
    return Shard(index, count)
