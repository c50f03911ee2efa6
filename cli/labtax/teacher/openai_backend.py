"""Teacher over any OpenAI-compatible endpoint, through the official `openai` client.

Chat completions only (chat-only models work). Retries with backoff on 429/5xx/timeouts, honouring
Retry-After, are the client's own (max_retries); we add one more layer only for what the client does not
retry: a 200 response whose body is not valid JSON. Concurrency is bounded by a semaphore.

`top_logprobs` > 0 asks the endpoint for `logprobs`/`top_logprobs` (OpenAI, vLLM and llama.cpp give them).
An endpoint that answers 400 about them is asked again without, once, and never asked for them again by
this teacher: its Completions then carry no log-probabilities and the caller falls back to the sampled text.

A TeacherError from an HTTP answer carries its status and Retry-After: with max_retries=0 (the Ray executor)
the caller retries, and its limiter needs both (scale/throttle.py).
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import sys
from datetime import UTC, datetime
from typing import Any

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

        self._openai = openai
        self._response_type = _raw_response_type(openai)
        self.model = model
        self.base_url = base_url
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            timeout=timeout,
            max_retries=max_retries,
        )
        self._semaphore = asyncio.Semaphore(max(1, concurrency))
        self._garbage_retries = max_retries
        self.logprobs_supported = True  # False once the endpoint refused them (HTTP 400 naming logprobs)

    async def complete(
        self, messages, *, n=1, temperature=0.7, max_tokens=256, seed=None, top_logprobs=0
    ) -> list[Completion]:
        openai = self._openai
        async with self._semaphore:
            refused = False  # this call already retried without logprobs
            attempt = 0
            while True:
                want = top_logprobs if top_logprobs > 0 and self.logprobs_supported else 0
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
                    if want:
                        body["logprobs"] = True
                        body["top_logprobs"] = want
                    # The raw response, read as JSON here: the client's typed ChatCompletion (pydantic models built
                    # for every choice and token) cost more CPU per call than the rest of the request.
                    response: Any = await self._client.post("/chat/completions", body=body, cast_to=self._response_type)
                    return _completions(response.json(), want)
                except (openai.APIResponseValidationError, ValueError, TypeError, AttributeError, KeyError) as exc:
                    # A 200 with a body that is not a chat completion: retry, then give up on this call.
                    if attempt >= self._garbage_retries:
                        raise TeacherError(f"malformed response from the endpoint: {exc}") from None
                    await asyncio.sleep(min(0.05 * 2**attempt, 2.0))
                    attempt += 1
                except openai.APIStatusError as exc:
                    if want and not refused and exc.status_code == 400 and "logprob" in str(exc.message).lower():
                        self.logprobs_supported = False  # remembered: later calls do not ask again
                        refused = True
                        continue
                    raise TeacherError(
                        f"endpoint returned HTTP {exc.status_code}: {_short(exc.message)}",
                        status=exc.status_code,
                        retry_after=_retry_after(getattr(exc.response, "headers", None)),
                    ) from None
                except openai.APITimeoutError:
                    raise TeacherError("request timed out after retries") from None
                except openai.APIConnectionError as exc:
                    raise TeacherError(f"cannot reach the endpoint {self.base_url}: {_short(str(exc))}") from None

    async def aclose(self) -> None:
        await self._client.close()


def _raw_response_type(openai) -> type:
    """The HTTP response class the client returns unparsed when asked for it as `cast_to`: that of the HTTP
    library its default client is built on (httpx2 in openai 3, httpx before)."""
    for klass in openai.DefaultAsyncHttpxClient.__mro__:
        if klass.__name__ == "AsyncClient":
            return sys.modules[klass.__module__.split(".")[0]].Response
    raise RuntimeError("the openai client is built on an HTTP library labtax does not know")


def _retry_after(headers) -> float | None:
    """Seconds an answer asks the client to wait, read as the openai client reads them: `retry-after-ms`, else
    `Retry-After` in (possibly fractional) seconds or as an HTTP date; None when absent or unreadable. Our own
    parser: the client's is private API."""
    if headers is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        return seconds if seconds >= 0 else None  # NaN and negative numbers are no delay at all
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": UTC by RFC 5322
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())  # a date already past: retry now


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _completions(data: dict, top_logprobs: int = 0) -> list[Completion]:
    """A chat completion's JSON as Completions; ValueError/TypeError/AttributeError for any other shape."""
    usage = data.get("usage") or {}
    prompt_tokens = usage.get("prompt_tokens") or 0
    completion_tokens = usage.get("completion_tokens") or 0
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in (prompt_tokens, completion_tokens)):
        raise ValueError("usage counts are not integers")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ValueError("response has no choices")
    out = []
    for i, choice in enumerate(choices):
        content = choice.get("message", {}).get("content")
        if not isinstance(content, str):
            raise ValueError("choice has no text content")
        reason = choice.get("finish_reason")
        out.append(
            Completion(
                text=content,
                finish_reason=reason if isinstance(reason, str) and reason else "stop",
                prompt_tokens=prompt_tokens if i == 0 else 0,
                completion_tokens=completion_tokens if i == 0 else 0,
                top_logprobs=_top_logprobs(choice) if top_logprobs else None,
            )
        )
    return out


def _top_logprobs(choice: dict) -> list[dict[str, float]] | None:
    """OpenAI's `choice.logprobs.content[i].top_logprobs` as one {token: logprob} per generated token; None when
    the endpoint sent none or something else (a server that ignores the parameter, another shape). Tokens that
    decode to the same text are merged (their probabilities add); non-finite values are dropped."""
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list) or not content:
        return None
    steps = []
    for position in content:
        candidates = position.get("top_logprobs") if isinstance(position, dict) else None
        if not isinstance(candidates, list):
            return None
        step: dict[str, float] = {}
        for candidate in candidates:
            if not isinstance(candidate, dict):
                continue
            token, logprob = candidate.get("token"), candidate.get("logprob")
            if not isinstance(token, str) or isinstance(logprob, bool) or not isinstance(logprob, int | float):
                continue
            if not math.isfinite(logprob):
                continue
            step[token] = float(logprob) if token not in step else _log_add(step[token], float(logprob))
        steps.append(step)
    return steps


def _log_add(a: float, b: float) -> float:
    """log(exp(a) + exp(b)), without overflow."""
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))
