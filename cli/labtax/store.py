"""Content-addressed cache of teacher calls: what makes generation incremental and resumable.

The key is a hash of everything that determines a call's output: the teacher model, the exact messages
(which embed the leaf content, the document chunk and the versioned prompt), the sampling settings and the
sample index (the seed). Each entry is written atomically the moment its call returns, so a run killed at
any point (Ctrl-C or kill -9) loses at most the calls in flight, and a re-run replays the rest for free.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from labtax.fileio import write_text_atomic


def call_key(model: str, messages: list[dict], settings: dict) -> str:
    payload = json.dumps({"model": model, "messages": messages, "settings": settings}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class CallCache:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        # The keys on disk, listed once: a miss (every call of a new run) then costs no open() syscall,
        # which on slow file systems took most of the pipeline's own time.
        self._known = {entry.stem for entry in self.folder.glob("??/*.json")} if self.folder.is_dir() else set()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> list[dict] | None:
        if key not in self._known:
            return None
        path = self._path(key)
        try:
            return json.loads(path.read_text(encoding="utf-8"))["choices"]
        except FileNotFoundError:
            return None
        except (ValueError, KeyError):
            path.unlink(missing_ok=True)  # a corrupt entry is a cache miss, never an error
            return None

    def put(self, key: str, choices: list[dict]) -> None:
        # No fsync: it stalled the event loop (and every call in flight) for milliseconds per call. A killed
        # process (Ctrl-C, kill -9) still leaves the entry in the page cache; after an OS crash a torn entry
        # reads as a miss in get() and is simply requested again.
        write_text_atomic(self._path(key), json.dumps({"choices": choices}, ensure_ascii=False), durable=False)
        self._known.add(key)
