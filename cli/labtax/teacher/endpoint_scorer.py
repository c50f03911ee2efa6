"""Scoring a given reply over an OpenAI-compatible endpoint, so the gate's likelihood checks (relevance,
grounding, unfinished: gate/relevance.py) run with an endpoint judge as they do with the embedded one.

A chat endpoint only samples; the legacy `/v1/completions` with `echo: true, logprobs: 1` (llama.cpp, vLLM and
others) returns the log-probability of every prompt token, which is what scoring a given reply needs. The
conversation must reach the model exactly as its chat template renders it, so labtax renders it with the
model's own tokenizer (a local folder: `--judge-tokenizer DIR`; `labtax teacher path` is SmolLM2's) and checks
that the server split the reply into the same tokens; where they differ (another model's tokenizer), it refuses
rather than score a differently formatted prompt. The reply's score is the sum of its tokens' log-probabilities
up to and including the end-of-turn token, the end-of-turn token's alone being `end`, as the embedded scorer
computes them (teacher/embedded.py `score`).

The capability is probed once, before the run (`probe`): an endpoint that cannot echo prompt log-probabilities
(llama.cpp started with `--logits_all False` answers HTTP 500; a chat-only API has no /v1/completions) is a
LabtaxError naming the fix, not a run whose likelihood checks silently decide nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labtax.errors import LabtaxError
from labtax.teacher.base import Completion, Likelihood, TeacherError
from labtax.teacher.scoring import reply_turn

PROBE = [{"role": "user", "content": "What is 2 + 2?"}]


class ChatTemplate:
    """The judge model's own chat template and tokenizer, from a local folder (never downloaded)."""

    def __init__(self, folder: Path):
        from labtax.errors import require

        require(("transformers",), "local", "--judge-tokenizer")
        from transformers import AutoTokenizer

        try:
            self.tokenizer: Any = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise LabtaxError(
                f"--judge-tokenizer {folder}: no tokenizer there ({str(exc).splitlines()[0][:160]}); pass the folder of "
                "the judge model's tokenizer.json and tokenizer_config.json (`labtax teacher path` for SmolLM2)"
            ) from None
        if not getattr(self.tokenizer, "chat_template", None):
            raise LabtaxError(
                f"--judge-tokenizer {folder} has no chat template: labtax would score a prompt the model never sees; "
                "pass the folder of a chat model's tokenizer (its tokenizer_config.json holds `chat_template`)"
            )
        self.end = self.tokenizer.eos_token or ""

    def split(self, messages: list[dict], reply: str) -> tuple[str, str, list[int]]:
        """(the prompt up to the assistant's turn, the reply through its end of turn, the reply's token ids), as
        the embedded scorer splits them (teacher/scoring.py reply_turn)."""
        head, tail = reply_turn(self.tokenizer, messages, reply, self.end)
        return head, tail, self.tokenizer(tail, add_special_tokens=False).input_ids

    def visible(self, ids: list[int]) -> str:
        """The reply's tokens as the server's token texts spell them (special tokens as nothing)."""
        return self.tokenizer.decode(ids, skip_special_tokens=True)


class ScoringJudge:
    """An endpoint judge that also scores given replies (teacher.base.Scorer): judge calls go to the wrapped
    backend unchanged, scores to the same endpoint's /v1/completions."""

    def __init__(self, backend, template: ChatTemplate, *, owns: bool = True):
        self.backend = backend
        self.template = template
        self.owns = owns  # False when it wraps the teacher, which its owner closes
        self.name = backend.name
        self.model = backend.model

    async def complete(self, messages, **options) -> list[Completion]:
        return await self.backend.complete(messages, **options)

    async def loglikelihood(self, contexts: list[list[dict]], continuation: str) -> list[Likelihood | None]:
        return [await self._one(messages, continuation) for messages in contexts]

    async def _one(self, messages: list[dict], reply: str) -> Likelihood | None:
        head, tail, ids = self.template.split(messages, reply)
        data = await self.backend.echo_logprobs(head + tail)
        tokens, logprobs = _prompt_logprobs(data)
        count = len(ids)
        if count == 0 or count > len(tokens):
            return None
        spelled, values, expected = "".join(tokens[-count:]), logprobs[-count:], self.template.visible(ids)
        if spelled != expected:
            raise TeacherError(
                f"the {self.backend.role} endpoint split the reply into other tokens than --judge-tokenizer does "
                f"({spelled[:60]!r} vs {expected[:60]!r}): the tokenizer is not the served model's; "
                "pass the served model's tokenizer folder"
            )
        known = [v for v in values if v is not None]
        if len(known) < len(values):
            return None
        return Likelihood(round(sum(known), 4), round(known[-1], 4))

    async def probe(self) -> None:
        """One score before the run: a server that cannot give prompt log-probabilities is told now, with the fix."""
        try:
            result = await self._one(PROBE, "4")
        except TeacherError as exc:
            raise LabtaxError(
                f"--judge-tokenizer: the {self.backend.role} endpoint {self.backend.where} cannot score a given reply "
                f"({exc}); it needs /v1/completions with echo and prompt logprobs (llama.cpp's server has it with "
                "--logits_all True, its default; vLLM's has it; a chat-only API does not): point --judge-base-url at "
                "one, or leave --judge-tokenizer out (the likelihood checks then do not run)"
            ) from None
        if result is None:
            raise LabtaxError(
                f"--judge-tokenizer: the {self.backend.role} endpoint {self.backend.where} echoed no log-probability for "
                "the reply's tokens, so it cannot score a given reply; leave --judge-tokenizer out"
            )

    async def aclose(self) -> None:
        if self.owns:
            await self.backend.aclose()


def _prompt_logprobs(data: Any) -> tuple[list[str], list[float | None]]:
    """The prompt tokens' texts and log-probabilities of an echoed completion (the generated tokens dropped)."""
    try:
        choice = data["choices"][0]
        logprobs = choice["logprobs"]
        tokens, values = list(logprobs["tokens"]), list(logprobs["token_logprobs"])
        generated = int((data.get("usage") or {}).get("completion_tokens") or 0)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise TeacherError(f"no echoed log-probabilities in the reply ({type(exc).__name__}: {exc})") from None
    if len(tokens) != len(values) or not all(isinstance(t, str) for t in tokens):
        raise TeacherError("the echoed tokens and their log-probabilities do not match")
    if generated:
        tokens, values = tokens[:-generated], values[:-generated]
    return tokens, [None if v is None else float(v) for v in values]
