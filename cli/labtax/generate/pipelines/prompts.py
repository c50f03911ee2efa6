"""Prompt templates are data (labtax/prompts/*.yaml), versioned; this module only loads and fills them.

A stage's conversation is: the system prompt, one turn per example
(`example_user` / `example_assistant`, filled from the leaf's seeds; for judges, seeds scored high
interleaved with bad examples scored low), then the final `user` turn. Small teachers follow a format
shown in earlier turns far more reliably than one described in words.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

PROMPT_DIR = Path(__file__).resolve().parent.parent / "prompts"


@dataclass(frozen=True)
class Stage:
    name: str
    system: str
    user: str
    max_tokens: int
    temperature: float
    example_user: str | None = None
    example_assistant: str | None = None
    negatives: tuple = ()  # fixed bad examples (dicts of fields) a judge sees scored low, beside the seeds

    def messages(self, fields: dict, examples: Sequence[dict] = ()) -> list[dict]:
        turns = [{"role": "system", "content": self.system.format(**fields).strip()}]
        if self.example_user and self.example_assistant:
            for example in examples:
                values = {**fields, **example}
                turns += [
                    {"role": "user", "content": self.example_user.format(**values).strip()},
                    {"role": "assistant", "content": self.example_assistant.format(**values).strip()},
                ]
        turns.append({"role": "user", "content": self.user.format(**fields).strip()})
        return turns


@dataclass(frozen=True)
class PromptSet:
    pipeline: str
    version: int
    stages: dict

    @property
    def tag(self) -> str:
        return f"{self.pipeline}@v{self.version}"

    def __getitem__(self, name: str) -> Stage:
        return self.stages[name]


def _stage(name: str, spec: dict) -> Stage:
    negatives = tuple(dict(item) for item in spec.get("negatives", []))
    return Stage(
        name,
        spec["system"],
        spec["user"],
        int(spec["max_tokens"]),
        float(spec["temperature"]),
        spec.get("example_user"),
        spec.get("example_assistant"),
        negatives,
    )


@functools.cache
def load(name: str) -> PromptSet:
    raw = yaml.safe_load((PROMPT_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    return PromptSet(
        raw["pipeline"], int(raw["version"]), {key: _stage(key, spec) for key, spec in raw["stages"].items()}
    )
