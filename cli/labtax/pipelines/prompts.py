"""Prompt templates are data (labtax/prompts/*.yaml), versioned; this module only loads and fills them.

A stage's conversation is: the system prompt, fixed few-shot turns (`shots`, e.g. a judge answering with
a bare digit), one turn per seed example (`example_user` / `example_assistant`, filled from the leaf's
seeds), then the final `user` turn. Small teachers follow a format shown in earlier turns far more
reliably than one described in words.
"""

from __future__ import annotations

import functools
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
    shots: tuple = ()  # ((user, assistant), ...) fixed turns
    example_user: str | None = None
    example_assistant: str | None = None

    def messages(self, fields: dict, examples: list[dict] = ()) -> list[dict]:
        turns = [{"role": "system", "content": self.system.format(**fields).strip()}]
        for user, assistant in self.shots:
            turns += [{"role": "user", "content": user.strip()}, {"role": "assistant", "content": assistant.strip()}]
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
    shots = tuple((shot["user"], shot["assistant"]) for shot in spec.get("shots", []))
    return Stage(name, spec["system"], spec["user"], int(spec["max_tokens"]), float(spec["temperature"]), shots, spec.get("example_user"), spec.get("example_assistant"))


@functools.cache
def load(name: str) -> PromptSet:
    raw = yaml.safe_load((PROMPT_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    return PromptSet(raw["pipeline"], int(raw["version"]), {key: _stage(key, spec) for key, spec in raw["stages"].items()})
