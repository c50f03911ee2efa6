"""Prompt templates are data (labtax/prompts/*.yaml), versioned; this module only loads and fills them."""

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

    def messages(self, fields: dict) -> list[dict]:
        return [{"role": "system", "content": self.system.strip()}, {"role": "user", "content": self.user.format(**fields).strip()}]


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


@functools.cache
def load(name: str) -> PromptSet:
    raw = yaml.safe_load((PROMPT_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    stages = {key: Stage(key, spec["system"], spec["user"], int(spec["max_tokens"]), float(spec["temperature"])) for key, spec in raw["stages"].items()}
    return PromptSet(raw["pipeline"], int(raw["version"]), stages)
