"""Teacher over any OpenAI-compatible endpoint, through the official `openai` client.

Chat completions only (chat-only models work). Retries with backoff on 429/5xx/timeouts, honouring
Retry-After, are the client's own (max_retries); we add one more layer only for what the client does not
retry: a 200 response whose body is not valid JSON. Concurrency is bounded by a semaphore.
"""

from __future__ import annotations

import asyncio

from labtax.teacher.base import Completion, TeacherError


class OpenAITeacher:
    name = "openai"

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        model: str,
        concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 4,
    ):
        from labtax.errors import require

        require(("openai",), "generate", "an OpenAI-compatible teacher")
        import openai
        from openai.types.chat import ChatCompletion

        self._openai = openai
        self._completion_type = ChatCompletion
        self.model = model
        self.base_url = base_url
        self._client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=max_retries
        )
        self._semaphore = asyncio.Semaphore(max(1, concurrency))
        self._garbage_retries = max_retries

    async def complete(self, messages, *, n=1, temperature=0.7, max_tokens=256, seed=None) -> list[Completion]:
        openai = self._openai
        async with self._semaphore:
            for attempt in range(self._garbage_retries + 1):
                try:
                    # The client's low-level post: the same retries, backoff, Retry-After, timeouts and response
                    # type as chat.completions.create, without its per-call walk over the parameter TypedDicts
                    # (a no-op for plain string messages, and a third of the client's CPU per call).
                    body = {
                        "model": self.model,
                        "messages": messages,
                        "n": n,
                        "temperature": temperature,
                        "max_tokens": max_tokens,
                    }
                    if seed is not None:
                        body["seed"] = seed
                    response = await self._client.post("/chat/completions", body=body, cast_to=self._completion_type)
                    return _completions(response)
                except (openai.APIResponseValidationError, ValueError, TypeError, AttributeError) as exc:
                    # A 200 with a body that is not a chat completion: retry, then give up on this call.
                    if attempt == self._garbage_retries:
                        raise TeacherError(f"malformed response from the endpoint: {exc}") from None
                    await asyncio.sleep(min(0.05 * 2**attempt, 2.0))
                except openai.APIStatusError as exc:
                    raise TeacherError(f"endpoint returned HTTP {exc.status_code}: {_short(exc.message)}") from None
                except openai.APITimeoutError:
                    raise TeacherError("request timed out after retries") from None
                except openai.APIConnectionError as exc:
                    raise TeacherError(f"cannot reach the endpoint {self.base_url}: {_short(str(exc))}") from None
        raise TeacherError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        await self._client.close()


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _completions(response) -> list[Completion]:
    usage = getattr(response, "usage", None)
    prompt_tokens = getattr(usage, "prompt_tokens", 0) or 0
    completion_tokens = getattr(usage, "completion_tokens", 0) or 0
    choices = response.choices
    if not choices:
        raise ValueError("response has no choices")
    out = []
    for i, choice in enumerate(choices):
        content = choice.message.content
        if not isinstance(content, str):
            raise ValueError("choice has no text content")
        out.append(
            Completion(
                text=content,
                finish_reason=choice.finish_reason or "stop",
                prompt_tokens=prompt_tokens if i == 0 else 0,
                completion_tokens=completion_tokens if i == 0 else 0,
            )
        )
    return out
