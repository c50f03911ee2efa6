"""Content-addressed cache of teacher calls: what makes generation incremental and resumable.

The key is a hash of everything that determines a call's output: the model that answers (the teacher's, or
the judge's for judge stages when a separate judge serves them), the exact messages
(which embed the leaf content, the document chunk and the versioned prompt), the sampling settings and the
sample index (the seed). Each entry is written atomically the moment its call returns, so a run killed at
any point (Ctrl-C or kill -9) loses at most the calls in flight, and a re-run replays the rest for free.
A judge's reply is stored with its `top_logprobs` when the endpoint gave them; an entry without them (older,
or from an endpoint that has none) is still a hit, and its verdict falls back to the sampled digit.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

from labtax.fileio import write_text_atomic

CHOICE_COUNTS = ("prompt_tokens", "completion_tokens")


def call_key(model: str, messages: list[dict], settings: dict) -> str:
    payload = json.dumps(
        {"model": model, "messages": messages, "settings": settings}, sort_keys=True, ensure_ascii=False
    )
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
        """The cached choices, or None: a missing, unreadable or malformed entry (wrong JSON shape, a
        folder in its place) is a miss, removed so that put() replaces it; never an error."""
        if key not in self._known:
            return None
        path = self._path(key)
        try:
            choices = valid_choices(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):  # missing, a folder, unreadable, not JSON, not UTF-8
            choices = None
        if choices is None:
            self._discard(path)
            self._known.discard(key)
        return choices

    def put(self, key: str, choices: list[dict]) -> None:
        # No fsync: it stalled the event loop (and every call in flight) for milliseconds per call. A killed
        # process (Ctrl-C, kill -9) still leaves the entry in the page cache; after an OS crash a torn entry
        # reads as a miss in get() and is simply requested again.
        path = self._path(key)
        if path.parent.exists() and not path.parent.is_dir():
            self._discard(path.parent)  # a file where the shard folder goes
        if path.is_dir():
            self._discard(path)  # a folder where the entry goes
        write_text_atomic(path, json.dumps({"choices": choices}, ensure_ascii=False), durable=False)
        self._known.add(key)

    @staticmethod
    def _discard(path: Path) -> None:
        """Remove a bad entry (a file, a link or a folder) so the next put() can take its place."""
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        except OSError:
            pass  # put() then reports what is in the way


def valid_choices(data) -> list[dict] | None:
    """`data["choices"]` when it has the shape put() writes (a non-empty list of completions with a text,
    a finish reason and token counts); None for anything else, so a damaged entry is never replayed."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices:
        return None
    out = []
    for choice in choices:
        if (
            not isinstance(choice, dict)
            or not isinstance(choice.get("text"), str)
            or not isinstance(choice.get("finish_reason"), str)
        ):
            return None
        tokens = [choice.get(name, 0) for name in CHOICE_COUNTS]
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in tokens):
            return None
        entry = {"text": choice["text"], "finish_reason": choice["finish_reason"], **dict(zip(CHOICE_COUNTS, tokens))}
        logprobs = choice.get("top_logprobs")
        if logprobs is not None:
            if not valid_top_logprobs(logprobs):
                return None
            entry["top_logprobs"] = logprobs
        out.append(entry)
    return out


def valid_top_logprobs(steps) -> bool:
    """A list of {token: finite log-probability <= 0 (a little over 0 allowed: rounding)} dicts."""
    return isinstance(steps, list) and all(
        isinstance(step, dict)
        and all(
            isinstance(token, str)
            and isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and value <= 1e-3
            for token, value in step.items()
        )
        for step in steps
    )
