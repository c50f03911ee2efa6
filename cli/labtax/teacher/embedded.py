"""The embedded default teacher: SmolLM2-135M-Instruct generating in-process on the CPU.

Why it batches: a 135M model leaves a CPU mostly idle at one sequence per forward pass (~20 tokens/s);
sixteen sequences per pass give several times the aggregate throughput for little more time per step.
So every `complete` call (from asyncio pipelines, or from `labtax serve`'s HTTP threads) goes onto one
queue, and a worker thread decodes up to `batch_size` sequences together (a shared KV cache, left-padded;
finished rows dropped as they end). Batching is continuous: requests that arrive while others decode join
at the next step, so a one-token judge call never waits for a 256-token answer to end. Prompts are
prefilled in groups of similar length, because on a CPU the prompt's forward pass is most of a call's cost
(~250 prompt tokens/s for this model on two cores) and padding a short prompt to a long one multiplies it.

Sampling is per row: each request keeps its own temperature, max_tokens and seed (a per-row random
generator), whoever it shares a batch with; bf16 arithmetic over a different batch shape can still
change the text, so a seed makes a run repeatable, not a request's text independent of its batch. Greedy output of this model loops, so sampling uses top-k/top-p and a repetition penalty
(over generated tokens only, so an answer may still quote its prompt). bf16 is used where the CPU has
native bf16 instructions (measured: several times faster than fp32 there), fp32 elsewhere.

For `labtax serve`, a request may also carry stop strings (checked on the text as it is decoded, so a
stopped choice costs no further forward passes), a callback that receives each choice's text as it grows
(streaming), and a cancel event (a client that went away frees its rows at the next step).

This module is the queue in front (requests checked, the worker thread, results back to their callers); the
engine that decodes is teacher/decoder.py, and scoring a given reply is teacher/scoring.py.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import queue
import threading
import time
from collections.abc import Callable

from labtax.records.messages import NO_LIST, ROLES
from labtax.records.messages import problem as chat_problem
from labtax.teacher.base import Completion, Likelihood, TeacherError
from labtax.teacher.decoder import Batch, Decoder, Request, ScoreRequest
from labtax.teacher.weights import MODEL_NAME

DEFAULT_BATCH_SIZE = 16  # sequences per forward pass; 8 and 16 measured best on a 2-core CPU (bench/teacher.py)
DEFAULT_WAIT_MS = 5.0  # how long the worker waits for more requests to fill a batch
TOP_K = 50
TOP_P = 0.9
REPETITION_PENALTY = 1.15
MAX_TOP_LOGPROBS = 20  # as OpenAI's API allows


def preferred_dtype() -> str:
    """bfloat16 where the CPU computes it natively (avx512_bf16 / AMX), else float32.

    $LABTAX_TEACHER_DTYPE overrides. Read from /proc/cpuinfo so `labtax teacher info` needs no torch.
    """
    chosen = os.environ.get("LABTAX_TEACHER_DTYPE")
    if chosen:
        return chosen
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "").split()
    except OSError:
        return "float32"
    return "bfloat16" if {"avx512_bf16", "amx_bf16"} & set(flags) else "float32"


def default_threads() -> int:
    if os.environ.get("LABTAX_TEACHER_THREADS"):
        return max(1, int(os.environ["LABTAX_TEACHER_THREADS"]))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class EmbeddedTeacher:
    """Teacher protocol over the in-process model; `submit` is the thread-safe entry for non-async callers."""

    name = "embedded"
    model = MODEL_NAME

    def __init__(
        self,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_wait_ms: float = DEFAULT_WAIT_MS,
        dtype: str | None = None,
        threads: int | None = None,
        top_k: int = TOP_K,
        top_p: float = TOP_P,
        repetition_penalty: float = REPETITION_PENALTY,
    ):
        self.batch_size = max(1, batch_size)
        self.max_wait = max(0.0, max_wait_ms) / 1000
        self.dtype = dtype or preferred_dtype()
        self.threads = threads or default_threads()
        self._sampling = {"top_k": top_k, "top_p": top_p, "repetition_penalty": repetition_penalty}
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()  # guards the queue's open/closed state; held only briefly
        self._load_lock = threading.Lock()  # the model load can take 20 s: never under self._lock
        self._worker: threading.Thread | None = None
        self._decoder: Decoder | None = None
        self._closed = False
        # batches: admissions (requests that arrived together and were prefilled together); steps: decoding passes
        self.stats = {
            "batches": 0,
            "steps": 0,
            "sequences": 0,
            "completion_tokens": 0,
            "seconds": 0.0,
            "load_seconds": 0.0,
            "prefilled_tokens": 0,  # prompt tokens admitted, and how many of them reused a remembered start
            "reused_tokens": 0,
        }

    # -- the Teacher protocol -------------------------------------------------------------------------
    async def complete(
        self, messages, *, n=1, temperature=0.7, max_tokens=256, seed=None, top_logprobs=0
    ) -> list[Completion]:
        cancel = threading.Event()
        future = self.submit(
            messages,
            n=n,
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed,
            top_logprobs=top_logprobs,
            cancel=cancel,
        )
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            # A running future cannot be cancelled: without this its rows would decode on to max_tokens, and a
            # Ctrl-C would wait for them in close(). The worker drops them at its next step.
            cancel.set()
            raise

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    # -- the Scorer protocol --------------------------------------------------------------------------
    async def loglikelihood(self, contexts: list[list[dict]], continuation: str) -> list[Likelihood | None]:
        """How likely the continuation is after each conversation, end of turn included (teacher/base.py)."""
        for messages in contexts:
            _check_request(messages, 1, 0.0, 1, [], 0)
        if not isinstance(continuation, str):
            raise TeacherError("the continuation must be a string")
        request = ScoreRequest([list(m) for m in contexts], continuation)
        self._enqueue(request)
        return await asyncio.wrap_future(request.future)

    # -- thread-safe entry points ---------------------------------------------------------------------
    def submit(
        self,
        messages,
        *,
        n: int = 1,
        temperature: float = 0.7,
        max_tokens: int = 256,
        seed: int | None = None,
        stop: list[str] | None = None,
        on_text: Callable[[int, str, str | None], None] | None = None,
        cancel: threading.Event | None = None,
        top_logprobs: int = 0,
    ) -> concurrent.futures.Future:
        """Queue one chat completion; the future gets `n` Completions or a TeacherError.

        `stop`: strings that end a choice where they first appear (cut off, finish_reason "stop", usage
        counts the tokens up to there). `on_text(choice, text, finish)` is called on the worker thread with
        each piece of a choice's text as it is decoded (never part of a stop string; `finish` is set on the
        choice's last call); it must return at once. Setting `cancel` drops the request at the next step
        and fails its future with a TeacherError. `top_logprobs`: per generated token, that many likeliest
        tokens with their log-probabilities (Completion.top_logprobs), as OpenAI's `top_logprobs`.
        """
        _check_request(messages, n, temperature, max_tokens, stop or [], top_logprobs)
        request = Request(
            list(messages),
            int(n),
            float(temperature),
            int(max_tokens),
            seed,
            list(stop or []),
            on_text,
            cancel,
            int(top_logprobs),
        )
        self._enqueue(request)
        return request.future

    def _enqueue(self, request: Request | ScoreRequest) -> None:
        with self._lock:
            if self._closed:
                raise TeacherError("the embedded teacher is closed")
            if self._worker is None:
                self._worker = threading.Thread(target=self._serve_queue, name="labtax-embedded-teacher", daemon=True)
                self._worker.start()
            self._queue.put(request)

    def load(self) -> None:
        """Load the model now (else the first request does): `labtax serve` answers its first call fast."""
        self._get_decoder()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            worker = self._worker
            if worker is not None:
                self._queue.put(None)
        if worker is not None:
            worker.join()
        self._decoder = None

    # -- the worker -----------------------------------------------------------------------------------
    def _get_decoder(self) -> Decoder:
        with self._load_lock:
            if self._decoder is None:
                started = time.monotonic()
                self._decoder = Decoder.load(self.dtype, self.threads, **self._sampling)
                self.stats["load_seconds"] = time.monotonic() - started
            return self._decoder

    def _serve_queue(self) -> None:
        """Continuous batching: between two decoding steps, requests that arrived join the running batch.

        A 135M model on a CPU spends most of a request's time in the prompt's forward pass, and requests
        arrive one stage at a time; a batch that only starts when the previous one has finished keeps short
        judge calls waiting behind one long answer, so new rows are admitted at every step instead.
        """
        state: Batch | None = None
        stopping = False
        while True:
            running = len(state.rows) if state is not None else 0
            if not running and stopping:
                return
            requests, stopping = self._take(block=not running, room=self.batch_size - running, stopping=stopping)
            if requests is None:
                return
            running_now = [r for r in requests if r.future.set_running_or_notify_cancel()]
            scores = [r for r in running_now if isinstance(r, ScoreRequest)]
            live = [r for r in running_now if isinstance(r, Request)]
            if scores:
                self._score(scores)
            if live:
                try:
                    decoder = self._get_decoder()
                except BaseException as exc:  # e.g. LabtaxError: the extra or the weights are missing
                    for request in live:
                        request.future.set_exception(exc)
                    continue
                started = time.monotonic()
                state = decoder.admit(state, live)
                self.stats.update(decoder.stats)
                self.stats["batches"] += 1
                self.stats["seconds"] += time.monotonic() - started
            if state is not None and state.rows:
                started = time.monotonic()
                done = decoder.step(state)
                self.stats["steps"] += 1
                self.stats["seconds"] += time.monotonic() - started
                for request, completions in done:  # counted first, so a caller reading stats sees its call
                    self.stats["sequences"] += len(completions)
                    self.stats["completion_tokens"] += sum(c.completion_tokens for c in completions)
                    if not request.future.done():  # a failed step may have failed it already
                        request.future.set_result(completions)

    def _score(self, requests: list[ScoreRequest]) -> None:
        """Scoring requests run at once, between two decoding steps (the model is this thread's alone)."""
        try:
            decoder = self._get_decoder()
        except BaseException as exc:
            for request in requests:
                request.future.set_exception(exc)
            return
        for request in requests:
            started = time.monotonic()
            try:
                request.future.set_result(decoder.score(request.contexts, request.continuation))
            except TeacherError as exc:
                request.future.set_exception(exc)
            except Exception as exc:  # a bug or an out-of-memory: this request fails, the batch goes on
                request.future.set_exception(TeacherError(f"embedded scoring failed: {type(exc).__name__}: {exc}"))
            self.stats["scored"] = self.stats.get("scored", 0) + len(request.contexts)
            self.stats["seconds"] += time.monotonic() - started

    def _take(self, *, block: bool, room: int, stopping: bool) -> tuple[list[Request | ScoreRequest] | None, bool]:
        """Requests to admit now: when idle, wait for one and whatever follows within max_wait; when
        decoding, only what is already queued. None when the teacher closed with nothing left to do."""
        requests: list[Request | ScoreRequest] = []
        if stopping:
            return requests, stopping
        if block:
            first = self._queue.get()
            if first is None:
                return None, True
            requests.append(first)
            room -= first.n
        deadline = time.monotonic() + (self.max_wait if block else 0.0)
        while room > 0:
            try:
                item = (
                    self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                    if block
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if item is None:
                return requests, True
            requests.append(item)
            room -= item.n
        return requests, stopping


def _check_request(messages, n, temperature, max_tokens, stop, top_logprobs) -> None:
    found = chat_problem(messages)
    if found is not None and found[0] == NO_LIST:
        raise TeacherError("messages must be a non-empty list of {role, content}")
    if found is not None:
        raise TeacherError(f"bad message {found[1]!r}: need role in {sorted(ROLES)} and string content")
    if not isinstance(n, int) or n < 1:
        raise TeacherError(f"n must be a positive integer, got {n!r}")
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise TeacherError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    if not isinstance(temperature, (int, float)) or temperature < 0:
        raise TeacherError(f"temperature must be >= 0, got {temperature!r}")
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        raise TeacherError(f"stop must be a list of non-empty strings, got {stop!r}")
    if not isinstance(top_logprobs, int) or not 0 <= top_logprobs <= MAX_TOP_LOGPROBS:
        raise TeacherError(f"top_logprobs must be an integer from 0 to {MAX_TOP_LOGPROBS}, got {top_logprobs!r}")
