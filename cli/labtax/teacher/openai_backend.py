"""Teacher over any OpenAI-compatible endpoint, through the official `openai` client.

Chat completions only (chat-only models work). Retries with backoff on 429/5xx/timeouts, honouring
Retry-After, are the client's own (max_retries); we add one more layer only for what the client does not
retry: a 200 response whose body is not valid JSON. Calls in flight are bounded by --concurrency and by what
the endpoint is measured to serve at once (teacher/capacity.py: a one-at-a-time server gets two, not a queue of
eight). Each call has one deadline (`timeout`, retries included), counted from when it gets its turn or from the
endpoint's last answer to any call, whichever is later (at most `timeout` x the concurrency): a server that
answers one request at a time keeps the others queued, and a call waiting its turn there is not a failed call.

An endpoint that takes no connection even after the client's retries raises EndpointUnreachable, and one that
answers what it would answer every call (no such model, no chat template, no chat API at that URL) raises
EndpointUnusable: the run stops and says so, with the fix (a rejected candidate would read as a verdict on the
data).

`top_logprobs` > 0 asks the endpoint for `logprobs`/`top_logprobs` (OpenAI, vLLM and llama.cpp give them).
The first such call finds out whether it gives them; an endpoint that answers an HTTP error naming them (400;
llama.cpp without --logits_all: 500) is asked again without, once, with a warning, and never asked for them
again by this teacher: its Completions then carry no log-probabilities and the caller falls back to the
sampled text (`logprobs_supported` records it for the run's summary).

A TeacherError from an HTTP answer carries its status and Retry-After: with max_retries=0 (the Ray executor)
the caller retries, and its limiter needs both (scale/throttle.py).
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from labtax.teacher.base import Completion, ContextExceeded, EndpointUnreachable, EndpointUnusable, TeacherError
from labtax.teacher.capacity import Capacity

DEFAULT_TIMEOUT = 60.0  # seconds one call may take in all (--timeout, [tool.labtax.teacher] timeout)


class OpenAITeacher:
    name = "openai"

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        model: str,
        concurrency: int = 8,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 4,
        *,
        role: str = "teacher",
        notice: Callable[[str], None] | None = None,
    ):
        """`timeout`: seconds one call may take in all, the client's retries included. `role` ("teacher" or
        "judge") names the endpoint in messages; `notice` shows a warning line (default: stderr)."""
        from labtax.errors import require

        require(("openai",), "generate", "an OpenAI-compatible teacher")
        import openai

        self._openai = openai
        self._response_type = _raw_response_type(openai)
        self.model = model
        self.base_url = base_url
        self.timeout = timeout
        self.role = role
        self.where = endpoint_host(base_url)
        self._notice = notice or (lambda line: print(line, file=sys.stderr))
        # A call queued behind others at a one-at-a-time server gets no byte until its turn: each read may take
        # as long as the whole queue; the deadline that counts is _deadline's.
        self._queue = max(1, concurrency)
        self._answered = 0.0  # time.monotonic() of the endpoint's last answer
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            timeout=timeout * self._queue,
            max_retries=max_retries,
        )
        self.capacity = Capacity(self._queue)  # in flight at once: --concurrency, or what the endpoint serves
        self._probing = asyncio.Lock()
        self._garbage_retries = max_retries
        # None until the first call that asks for logprobs: True when it got an answer, False once the endpoint
        # refused them (an HTTP error naming logprobs: llama.cpp answers 500, others 400)
        self.logprobs_supported: bool | None = None

    async def complete(
        self, messages, *, n=1, temperature=0.7, max_tokens=256, seed=None, top_logprobs=0
    ) -> list[Completion]:
        body = {"model": self.model, "messages": messages, "n": n, "temperature": temperature, "max_tokens": max_tokens}
        if seed is not None:
            body["seed"] = seed
        if top_logprobs > 0 and self.logprobs_supported is None:
            # The first call that asks for logprobs finds out whether the endpoint gives them; the others wait for
            # its answer rather than each collect the same refusal (and the client's retries of a 500).
            async with self._probing:
                if self.logprobs_supported is None:
                    return await self._call(body, top_logprobs, probe=True)
        return await self._call(body, top_logprobs)

    async def _call(self, body: dict, top_logprobs: int, probe: bool = False) -> list[Completion]:
        """One call under the concurrency bound and one overall deadline (the client's timeout bounds each read,
        not the whole: a server that trickles its answer or a queue of retries would outlast it)."""
        ticket, tokens = await self.capacity.acquire(), None
        try:
            completions = await self._within_deadline(self._attempts(body, top_logprobs, probe))
            tokens = sum(c.completion_tokens for c in completions)
            return completions
        finally:
            self.capacity.release(ticket, tokens)

    def _deadline(self, started: float) -> float:
        """When a call started at `started` times out: `timeout` after it started or after the endpoint last
        answered any call, whichever is later, and never past `timeout` x the concurrency. A server that serves
        one request at a time (llama.cpp's default) keeps the others queued; while it keeps answering them, a
        queued call is waiting its turn, not lost. One that answers nothing for `timeout` fails every call."""
        return min(started + self.timeout * self._queue, max(started, self._answered) + self.timeout)

    async def _within_deadline(self, work):
        started = time.monotonic()
        task = asyncio.ensure_future(work)
        try:
            while time.monotonic() < self._deadline(started):
                done, _ = await asyncio.wait({task}, timeout=max(0.0, self._deadline(started) - time.monotonic()))
                if done:
                    result = task.result()
                    self._answered = time.monotonic()
                    return result
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        raise await self._timed_out()

    async def _attempts(self, body: dict, top_logprobs: int, probe: bool) -> list[Completion]:
        openai = self._openai
        refused = False  # this call already retried without logprobs
        attempt = 0
        while True:
            want = top_logprobs if top_logprobs > 0 and self.logprobs_supported is not False else 0
            request = {**body, "logprobs": True, "top_logprobs": want} if want else body
            # The probe asks once, without the client's retries: a server that cannot give logprobs may answer
            # 500, which the client would otherwise ask again 4 times before we see it. Any other failure of the
            # probe is asked again with the client's retries.
            options: Any = {"max_retries": 0} if probe and want else {}
            try:
                # The client's low-level post: the same retries, backoff, Retry-After, timeouts and response
                # type as chat.completions.create, without its per-call walk over the parameter TypedDicts
                # (a no-op for plain string messages, and a third of the client's CPU per call).
                # The raw response, read as JSON here: the client's typed ChatCompletion (pydantic models built
                # for every choice and token) cost more CPU per call than the rest of the request.
                response: Any = await self._client.post(
                    "/chat/completions", body=request, cast_to=self._response_type, options=options
                )
                completions = _completions(_json(response), want)
                if want:
                    self.logprobs_supported = True
                return completions
            except (openai.APIResponseValidationError, ValueError, TypeError, AttributeError, KeyError) as exc:
                # A 200 with a body that is not a chat completion: retry, then give up on this call.
                if attempt >= self._garbage_retries:
                    raise TeacherError(f"malformed response from the endpoint: {exc}") from None
                await asyncio.sleep(min(0.05 * 2**attempt, 2.0))
                attempt += 1
            except openai.APIStatusError as exc:
                if exc.status_code == 400 and _context_exceeded(exc):
                    raise self._status_error(exc) from None
                if want and not refused and _names_logprobs(exc):
                    self._refuse_logprobs(exc)
                    refused = True
                    continue
                if probe and want:
                    probe = False
                    continue
                raise self._status_error(exc) from None
            except openai.APITimeoutError:  # before APIConnectionError: it is one
                if probe and want:
                    probe = False
                    continue
                raise TeacherError(f"timed out: no answer from the {self.role} endpoint {self.where}") from None
            except openai.APIConnectionError as exc:
                if probe and want:
                    probe = False
                    continue
                raise self._unreachable(exc) from None

    async def echo_logprobs(self, prompt: str) -> dict:
        """The legacy completions endpoint's echo of `prompt` with every token's log-probability (one token
        generated: some servers refuse zero), for scoring a given reply (teacher/endpoint_scorer.py). Under the
        same concurrency bound, deadline and retries as a chat call; a TeacherError when it cannot."""
        openai = self._openai
        body = {"model": self.model, "prompt": prompt, "max_tokens": 1, "echo": True, "logprobs": 1, "temperature": 0}
        ticket = await self.capacity.acquire()
        try:
            try:
                response: Any = await self._within_deadline(
                    self._client.post("/completions", body=body, cast_to=self._response_type)
                )
                return _json(response)
            except openai.APIStatusError as exc:
                raise self._status_error(exc, chat=False) from None
            except openai.APITimeoutError:
                raise TeacherError(f"timed out: no answer from the {self.role} endpoint {self.where}") from None
            except openai.APIConnectionError as exc:
                raise self._unreachable(exc) from None
            except (openai.APIResponseValidationError, ValueError) as exc:
                raise TeacherError(f"malformed response from the endpoint: {exc}") from None
        finally:
            self.capacity.release(ticket, None)  # a scoring call decodes nothing: no measure of its speed

    def _status_error(self, exc, chat: bool = True) -> TeacherError:
        """An HTTP error answer as one TeacherError (with its status and Retry-After, for the callers that retry);
        a prompt past the model's context window says how to serve a longer one."""
        if chat and (unusable := self._unusable(exc)):
            return unusable
        if exc.status_code == 400 and _context_exceeded(exc):
            return ContextExceeded(
                f"the prompt does not fit the {self.role} model's context window ({_short(_error_message(exc), 160)}); "
                "serve the model with a longer context (llama.cpp: --n_ctx, vLLM: --max-model-len) or use one "
                "with a longer window",
                status=400,
            )
        return TeacherError(
            f"endpoint returned HTTP {exc.status_code}: {_short(exc.message)}",
            status=exc.status_code,
            retry_after=_retry_after(getattr(exc.response, "headers", None)),
        )

    def _unusable(self, exc) -> EndpointUnusable | None:
        """An answer every later call would get too, as the error that stops the run, with its fix: a model the
        endpoint does not serve (OpenAI's, vLLM's and Ollama's 404), a model without a chat template (vLLM's
        400), a URL with no chat API (a 404 that names no model: --base-url without its /v1)."""
        text = _error_message(exc)
        lowered = text.lower()
        flag = "--judge-model" if self.role == "judge" else "--model"
        where = f"the {self.role} endpoint {self.where}"
        if exc.status_code == 404 and "model" in lowered and self.model.lower() in lowered:
            return EndpointUnusable(
                f"{where} does not serve the model {self.model!r} ({_short(text, 120)}); name one it serves with "
                f"{flag} (GET /models lists them)",
                status=404,
            )
        if exc.status_code == 404:
            return EndpointUnusable(
                f"{where} has no chat-completions API at that address (HTTP 404: {_short(text, 80)}); an "
                "OpenAI-compatible base URL usually ends in /v1",
                status=404,
            )
        if exc.status_code == 400 and "chat template" in lowered:
            return EndpointUnusable(
                f"{where} has no chat template for {self.model!r} ({_short(text, 120)}); serve an instruct (chat) "
                "model, or start the server with the model's template (vLLM: --chat-template FILE; llama.cpp: "
                "--chat_format NAME)",
                status=400,
            )
        return None

    def _refuse_logprobs(self, exc) -> None:
        """Never ask this endpoint for logprobs again; say so once, with the server option that turns them on."""
        if self.logprobs_supported is False:
            return
        self.logprobs_supported = False
        self._notice(
            f"warning: the {self.role} endpoint {self.where} gives no log-probabilities (HTTP {exc.status_code}: "
            f"{_short(_error_message(exc), 120)}); judge verdicts fall back to the sampled digit, with no probability "
            "and no calibrated threshold. For probabilities, start the server with them on (llama.cpp: --logits_all True)"
        )

    def _unreachable(self, exc: Exception) -> EndpointUnreachable:
        flags = "--judge-base-url / LABTAX_JUDGE_BASE_URL" if self.role == "judge" else "--base-url / OPENAI_BASE_URL"
        return EndpointUnreachable(
            f"cannot reach the {self.role} endpoint {self.where} ({_cause(exc)}); start the server there, "
            f"or name one that runs with {flags}"
        )

    async def _timed_out(self) -> TeacherError:
        """The error for a call past its deadline: EndpointUnreachable when the endpoint does not even take a
        connection now (with a deadline shorter than the client's retries, a dead server only ever times
        out), else a timeout that names the fix."""
        openai = self._openai
        check = min(5.0, self.timeout)
        try:
            # The check's own overall deadline too: the client's timeout bounds each read, and a server that
            # drips a byte a second would hold the check (and the run) as long as it liked.
            async with asyncio.timeout(check):
                await self._client.get(
                    "/models", cast_to=self._response_type, options={"max_retries": 0, "timeout": check}
                )
        except (openai.APITimeoutError, TimeoutError):
            pass
        except openai.APIConnectionError as exc:
            return self._unreachable(exc)
        except openai.APIError:
            pass  # it answered: reachable
        return TeacherError(
            f"timed out: no answer within {self.timeout:g} s, the deadline of one call, retries included; a server "
            "busy with other requests needs a longer --timeout ([tool.labtax.teacher] timeout) or a lower --concurrency"
        )

    async def aclose(self) -> None:
        if note := self.capacity.note(f"the {self.role} endpoint {self.where}"):
            self._notice(note)
        await self._client.close()


def endpoint_host(base_url: str | None) -> str:
    """The endpoint's host:port, for messages: never its whole URL, which can carry credentials (user:password@,
    a key in the query)."""
    if not base_url:
        return "api.openai.com:443"  # the client's default
    try:
        parts = urlsplit(base_url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "(an unreadable URL)"
    if not host:
        return "(an unreadable URL)"
    host = f"[{host}]" if ":" in host else host
    port = port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    return f"{host}:{port}" if port else host


def _cause(exc: BaseException) -> str:
    """The innermost reason of a connection error ("[Errno 111] Connection refused"), not the client's
    "Connection error."."""
    seen = {id(exc)}
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        exc = inner
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()  # "connection refused", not "[Errno 111] Connect call failed (...)"
    return _short(str(exc) or type(exc).__name__, 120)


def _names_logprobs(exc) -> bool:
    """An HTTP error that is about logprobs: a 400 (most servers) or a 500 (llama.cpp started without
    --logits_all: "logprobs is not supported for models created with logits_all=False")."""
    return 400 <= exc.status_code < 600 and "logprob" in str(exc.message).lower()


def _context_exceeded(exc) -> bool:
    """A 400 saying the prompt is past the context window (OpenAI's, vLLM's, llama-cpp-python's and llama.cpp's
    wording)."""
    text, body = _error_message(exc).lower(), str(getattr(exc, "body", ""))
    return (
        "context_length_exceeded" in body
        or "exceed_context_size" in body  # llama.cpp's own server
        or "maximum context length" in text
        or "exceeds the available context size" in text
    )


def _error_message(exc) -> str:
    """The error's own text where the body is OpenAI's {"error": {"message": ...}}, else the client's message."""
    body = getattr(exc, "body", None)
    error = body.get("error", body) if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) and message else str(exc.message)


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


def _json(response) -> Any:
    """The body as JSON; a body nested past the parser's recursion limit is a ValueError (a malformed reply that
    costs its candidate), not a RecursionError that ends the run."""
    try:
        return response.json()
    except RecursionError:
        raise ValueError("the reply is JSON nested too deeply to read") from None


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
