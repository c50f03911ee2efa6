"""StageRunner: every teacher call of a pipeline goes through here (cache, counters, progress)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field

from labtax.pipelines.outcome import Reject
from labtax.pipelines.prompts import PromptSet
from labtax.store import CallCache, call_key
from labtax.teacher.base import Completion, TeacherError


@dataclass
class CallStats:
    teacher_calls: int = 0
    cached_calls: int = 0
    tokens: int = 0
    by_stage: dict = field(default_factory=dict)


class StageRunner:
    def __init__(self, teacher, cache: CallCache, prompts: PromptSet, progress=None):
        self.teacher = teacher
        self.cache = cache
        self.prompts = prompts
        self.progress = progress
        self.stats = CallStats()

    async def call(self, stage: str, fields: dict, index: int, examples: list[dict] = ()) -> Completion:
        """One completion for `stage` of candidate `index`; a failed request becomes a Reject."""
        spec = self.prompts[stage]
        messages = spec.messages(fields, examples)
        settings = {"temperature": spec.temperature, "max_tokens": spec.max_tokens, "seed": index, "prompts": self.prompts.tag, "stage": stage}
        key = call_key(self.teacher.model, messages, settings)
        cached = self.cache.get(key)
        if cached is not None:
            self.stats.cached_calls += 1
            completion = Completion(**cached[0])
        else:
            try:
                completions = await self.teacher.complete(messages, n=1, temperature=spec.temperature, max_tokens=spec.max_tokens, seed=index)
            except TeacherError as exc:
                raise Reject(stage, "teacher_error", str(exc)) from None
            completion = completions[0]
            # In a thread: the write's open/rename syscalls would otherwise stall every call in flight.
            await asyncio.to_thread(self.cache.put, key, [asdict(c) for c in completions])
            self.stats.teacher_calls += 1
            self.stats.tokens += completion.prompt_tokens + completion.completion_tokens
        self.stats.by_stage[stage] = self.stats.by_stage.get(stage, 0) + 1
        if self.progress is not None:
            self.progress.advance(stage)
        return completion
