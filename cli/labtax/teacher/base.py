"""The Teacher contract shared by the OpenAI-compatible backend and the embedded default."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass
class Completion:
    text: str
    finish_reason: str = "stop"  # "length" means the output was cut by max_tokens
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # per generated token, the likeliest tokens' text -> log-probability; None when not asked or not given
    top_logprobs: list[dict[str, float]] | None = None


@dataclass
class TeacherError(Exception):
    """A request that failed for good (after retries); the candidate is rejected, the run goes on."""

    message: str
    retryable: bool = False
    status: int | None = None  # the endpoint's HTTP status, where it answered one (429/503: congestion)
    retry_after: float | None = None  # seconds the endpoint asked to wait (Retry-After), where it said

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):
        """Every field survives pickling (a Ray worker's error crosses processes); Exception keeps only `args`."""
        return type(self), (self.message, self.retryable, self.status, self.retry_after)


class ContextExceeded(TeacherError):
    """The prompt does not fit the model's context window (an HTTP 400 that says so): the caller may send a
    shorter one (generate/pipelines/runner.py drops seed examples, then shortens the longest field)."""


class EndpointUnusable(TeacherError):
    """An endpoint that will fail every call the same way (no connection, no such model, no chat template, no
    such route): the run stops (exit 2) instead of rejecting the candidate, since a misconfigured server is no
    verdict on the data. The message names the endpoint's host, never its whole URL (a URL can carry
    credentials), and the fix."""


class EndpointUnreachable(EndpointUnusable):
    """No connection to the endpoint at all, after the client's own retries."""


@dataclass
class TeacherInfo:
    name: str  # backend: "openai" | "embedded"
    model: str
    reason: str  # why this teacher serves (for `labtax teacher info` and generate's first line)
    details: dict = field(default_factory=dict)


@runtime_checkable
class Teacher(Protocol):
    name: str
    model: str

    async def complete(
        self,
        messages: list[dict],
        *,
        n: int = 1,
        temperature: float = 0.7,
        max_tokens: int = 256,
        seed: int | None = None,
        top_logprobs: int = 0,
    ) -> list[Completion]:
        """Chat completion: `n` choices for one conversation. Raises TeacherError when it fails for good.

        `top_logprobs` > 0 asks for that many candidate tokens with their log-probabilities at every generated
        position (Completion.top_logprobs); a backend that cannot give them returns None there, never fails."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class Likelihood:
    """How likely a model finds a given reply after a conversation: `total`, log P(reply and end of turn), and
    `end`, log P(end of turn | conversation, reply): a reply cut off mid-way is very unlikely to end there."""

    total: float
    end: float


@runtime_checkable
class Scorer(Protocol):
    """A model that can say how likely a given reply is, not only sample one (the embedded teacher can; a chat
    endpoint cannot). The gate uses it to ask whether an answer belongs to its own question and reads as
    finished (gate/relevance.py)."""

    model: str

    async def loglikelihood(self, contexts: list[list[dict]], continuation: str) -> list[Likelihood | None]:
        """For each conversation in `contexts`, how likely `continuation` is as the assistant's next turn;
        None for a conversation that does not fit the model's context."""
        ...
