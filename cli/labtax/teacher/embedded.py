"""The embedded default teacher: SmolLM2-135M-Instruct generating in-process on the CPU.

Why it batches: a 135M model leaves a CPU mostly idle at one sequence per forward pass (~20 tokens/s);
sixteen sequences per pass give several times the aggregate throughput for little more time per step.
So every `complete` call (from asyncio pipelines, or from `labtax serve`'s HTTP threads) goes onto one
queue; a worker thread collects what arrives within a few milliseconds, up to `batch_size` sequences,
and decodes them together (left padding, a shared KV cache, finished rows dropped as they end).

Sampling is per row: each request keeps its own temperature, max_tokens and seed (a per-row random
generator), whoever it shares a batch with; bf16 arithmetic over a different batch shape can still
change the text, so a seed makes a run repeatable, not a request's text independent of its batch. Greedy output of this model loops, so sampling uses top-k/top-p and a repetition penalty
(over generated tokens only, so an answer may still quote its prompt). bf16 is used where the CPU has
native bf16 instructions (measured: several times faster than fp32 there), fp32 elsewhere.

For `labtax serve`, a request may also carry stop strings (checked on the text as it is decoded, so a
stopped choice costs no further forward passes), a callback that receives each choice's text as it grows
(streaming), and a cancel event (a client that went away frees its rows at the next step).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import os
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from labtax.teacher.base import Completion, TeacherError
from labtax.teacher.weights import MODEL_NAME

DEFAULT_BATCH_SIZE = 16  # sequences per forward pass; 8 and 16 measured best on a 2-core CPU (bench/teacher.py)
DEFAULT_WAIT_MS = 5.0  # how long the worker waits for more requests to fill a batch
TOP_K = 50
TOP_P = 0.9
REPETITION_PENALTY = 1.15
ROLES = {"system", "user", "assistant"}


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


@dataclass
class _Request:
    messages: list
    n: int
    temperature: float
    max_tokens: int
    seed: int | None
    stop: list[str] = field(default_factory=list)
    on_text: Callable[[int, str, str | None], None] | None = None
    cancel: threading.Event | None = None
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)

    @property
    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()


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
        self._decoder: _Decoder | None = None
        self._closed = False
        self.stats = {"batches": 0, "sequences": 0, "completion_tokens": 0, "seconds": 0.0, "load_seconds": 0.0}

    # -- the Teacher protocol -------------------------------------------------------------------------
    async def complete(self, messages, *, n=1, temperature=0.7, max_tokens=256, seed=None) -> list[Completion]:
        return await asyncio.wrap_future(
            self.submit(messages, n=n, temperature=temperature, max_tokens=max_tokens, seed=seed)
        )

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

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
    ) -> concurrent.futures.Future:
        """Queue one chat completion; the future gets `n` Completions or a TeacherError.

        `stop`: strings that end a choice where they first appear (cut off, finish_reason "stop", usage
        counts the tokens up to there). `on_text(choice, text, finish)` is called on the worker thread with
        each piece of a choice's text as it is decoded (never part of a stop string; `finish` is set on the
        choice's last call); it must return at once. Setting `cancel` drops the request at the next step
        and fails its future with a TeacherError.
        """
        _check_request(messages, n, temperature, max_tokens, stop or [])
        request = _Request(
            list(messages), int(n), float(temperature), int(max_tokens), seed, list(stop or []), on_text, cancel
        )
        with self._lock:
            if self._closed:
                raise TeacherError("the embedded teacher is closed")
            if self._worker is None:
                self._worker = threading.Thread(target=self._serve_queue, name="labtax-embedded-teacher", daemon=True)
                self._worker.start()
            self._queue.put(request)
        return request.future

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
    def _get_decoder(self) -> _Decoder:
        with self._load_lock:
            if self._decoder is None:
                started = time.monotonic()
                self._decoder = _Decoder.load(self.dtype, self.threads, **self._sampling)
                self.stats["load_seconds"] = time.monotonic() - started
            return self._decoder

    def _serve_queue(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            batch, rows = [first], first.n
            deadline = time.monotonic() + self.max_wait
            while rows < self.batch_size:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
                rows += item.n
            live = [r for r in batch if r.future.set_running_or_notify_cancel()]
            if live:
                self._run_batch(live)

    def _run_batch(self, requests: list[_Request]) -> None:
        try:
            decoder = self._get_decoder()
        except BaseException as exc:  # e.g. LabtaxError: the extra or the weights are missing
            for request in requests:
                request.future.set_exception(exc)
            return
        started = time.monotonic()
        try:
            results = decoder.generate(requests)
        except Exception as exc:  # a bug or an out-of-memory: these requests fail, the teacher lives on
            for request in requests:
                request.future.set_exception(TeacherError(f"embedded generation failed: {type(exc).__name__}: {exc}"))
            return
        self.stats["batches"] += 1
        self.stats["seconds"] += time.monotonic() - started
        for request, result in zip(requests, results):
            if isinstance(result, Exception):
                request.future.set_exception(result)
            else:
                self.stats["sequences"] += len(result)
                self.stats["completion_tokens"] += sum(c.completion_tokens for c in result)
                request.future.set_result(result)


def _check_request(messages, n, temperature, max_tokens, stop) -> None:
    if not isinstance(messages, list) or not messages:
        raise TeacherError("messages must be a non-empty list of {role, content}")
    for message in messages:
        if (
            not isinstance(message, dict)
            or message.get("role") not in ROLES
            or not isinstance(message.get("content"), str)
        ):
            raise TeacherError(f"bad message {message!r}: need role in {sorted(ROLES)} and string content")
    if not isinstance(n, int) or n < 1:
        raise TeacherError(f"n must be a positive integer, got {n!r}")
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise TeacherError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    if not isinstance(temperature, (int, float)) or temperature < 0:
        raise TeacherError(f"temperature must be >= 0, got {temperature!r}")
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        raise TeacherError(f"stop must be a list of non-empty strings, got {stop!r}")


class _Decoder:
    """Owns the model; decodes a batch of requests in one KV-cached loop. Used by the worker thread only."""

    def __init__(self, model, tokenizer, *, top_k, top_p, repetition_penalty):
        self.model = model
        self.tokenizer = tokenizer
        self.top_k = top_k
        self.top_p = top_p
        self.penalty = repetition_penalty
        self.context = int(getattr(model.config, "max_position_embeddings", 2048))
        ends = {tokenizer.eos_token_id, *(tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>"))}
        self.stop_ids = {t for t in ends if isinstance(t, int) and t >= 0 and t != tokenizer.unk_token_id}
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        # transformers 5 renamed `past_key_values` to `cache`; accept both versions.
        self.cache_kwarg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    @classmethod
    def load(cls, dtype: str, threads: int, **sampling) -> _Decoder:
        import torch

        from labtax.teacher.smollm import load_model_and_tokenizer

        torch.set_num_threads(threads)
        model, tokenizer = load_model_and_tokenizer(dtype=dtype)
        return cls(model, tokenizer, **sampling)

    def encode(self, messages) -> list[int]:
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def generate(self, requests) -> list:
        """Per request: a list of `n` Completions, or a TeacherError for that request alone."""
        import torch

        results: list = [None] * len(requests)
        rows = []  # (request index, choice, prompt ids, temperature, max new tokens, seed)
        for index, request in enumerate(requests):
            if request.cancelled:
                results[index] = TeacherError("the request was cancelled")
                continue
            try:
                prompt = self.encode(request.messages)
            except Exception as exc:
                results[index] = TeacherError(f"cannot apply the chat template: {exc}")
                continue
            room = self.context - len(prompt)
            if room < 1:
                results[index] = TeacherError(
                    f"prompt of {len(prompt)} tokens exceeds the model's context of {self.context}"
                )
                continue
            for choice in range(request.n):
                seed = random.getrandbits(62) if request.seed is None else (int(request.seed) * 1009 + choice) % 2**62
                rows.append((index, choice, prompt, request.temperature, min(request.max_tokens, room), seed))
        if rows:
            with torch.inference_mode():
                outputs = self._decode(rows, requests)
            for index, request in enumerate(requests):
                if request.cancelled:
                    results[index] = TeacherError("the request was cancelled")
                elif results[index] is None:
                    choices = sorted((out for out in outputs if out[0] == index), key=lambda out: out[1])
                    prompt_tokens = len(next(row[2] for row in rows if row[0] == index))
                    results[index] = [
                        # Usage belongs to the call, as in the OpenAI backend: prompt tokens count once.
                        Completion(
                            text=text,
                            finish_reason=finish,
                            prompt_tokens=prompt_tokens if k == 0 else 0,
                            completion_tokens=count,
                        )
                        for k, (_, _, text, finish, count) in enumerate(choices)
                    ]
        return results

    def _decode(self, rows, requests) -> list[tuple]:
        import torch
        from transformers import DynamicCache

        width = max(len(row[2]) for row in rows)
        ids = torch.tensor([[self.pad_id] * (width - len(r[2])) + r[2] for r in rows], dtype=torch.long)
        mask = torch.tensor([[0] * (width - len(r[2])) + [1] * len(r[2]) for r in rows], dtype=torch.long)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        temperatures = torch.tensor([r[3] for r in rows], dtype=torch.float32)
        limits = [r[4] for r in rows]
        generators = [torch.Generator().manual_seed(r[5]) for r in rows]
        live = list(range(len(rows)))  # row numbers still decoding, in batch order
        tokens: list[list[int]] = [[] for _ in rows]
        finished: dict[int, str] = {}
        seen = torch.zeros(len(rows), self.model.config.vocab_size, dtype=torch.bool)
        owners = [requests[r[0]] for r in rows]
        # Text is followed token by token only where someone needs it (stop strings, streaming).
        texts = [_Text(self.tokenizer, o.stop) if o.stop or o.on_text else None for o in owners]
        cache = DynamicCache()
        step_ids = ids
        while live:
            out = self.model(
                input_ids=step_ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                logits_to_keep=1,
                **{self.cache_kwarg: cache},
            )
            chosen = self._sample(out.logits[:, -1, :].float(), temperatures, [generators[r] for r in live], seen)
            keep = []
            for slot, row in enumerate(live):
                owner, text = owners[row], texts[row]
                if owner.cancelled:
                    finished[row] = "cancelled"
                    continue
                token = int(chosen[slot])
                if token in self.stop_ids:
                    finished[row] = "stop"
                else:
                    tokens[row].append(token)
                    if text is not None and text.add(tokens[row]):
                        finished[row] = "stop"  # a stop string appeared: no more forward passes for it
                    elif len(tokens[row]) >= limits[row]:
                        finished[row] = "length"
                if text is not None:
                    done = finished.get(row)
                    if done is not None and not text.stopped and text.add(tokens[row], final=True):
                        done = finished[row] = "stop"
                    if owner.on_text is not None:
                        piece = text.take(final=done is not None)
                        if piece or done:
                            owner.on_text(rows[row][1], piece, done)
                if row not in finished:
                    keep.append(slot)
            if not keep:
                break
            if len(keep) < len(live):
                index = torch.tensor(keep, dtype=torch.long)
                cache.batch_select_indices(index)
                mask, positions, temperatures, seen, chosen = (
                    mask[index],
                    positions[index],
                    temperatures[index],
                    seen[index],
                    chosen[index],
                )
                live = [live[slot] for slot in keep]
            step_ids = chosen.unsqueeze(-1)
            mask = torch.cat([mask, mask.new_ones(len(live), 1)], dim=-1)
            positions = positions[:, -1:] + 1
        return [
            (row[0], row[1], self._final_text(texts[k], tokens[k]), finished.get(k, "length"), len(tokens[k]))
            for k, row in enumerate(rows)
        ]

    def _final_text(self, streamed: _Text | None, tokens: list[int]) -> str:
        """The text as streamed (stop strings cut), or decoded whole when nothing was streamed."""
        return streamed.text if streamed is not None else self.tokenizer.decode(tokens, skip_special_tokens=True)

    def _sample(self, logits, temperatures, generators, seen):
        """Next token per row: repetition penalty, then greedy (temperature 0) or top-k/top-p sampling."""
        import torch

        if self.penalty != 1.0:
            penalized = torch.where(logits > 0, logits / self.penalty, logits * self.penalty)
            logits = torch.where(seen, penalized, logits)
        chosen = logits.argmax(dim=-1)
        sampled = (temperatures > 0).nonzero().flatten().tolist()
        if sampled:
            top_logits, top_ids = logits.topk(min(self.top_k, logits.shape[-1]), dim=-1)
            probs = torch.softmax(top_logits / temperatures.clamp(min=1e-4).unsqueeze(-1), dim=-1)
            before = probs.cumsum(dim=-1) - probs  # mass of the better tokens: keep until top_p is reached
            probs = probs.masked_fill(before >= self.top_p, 0.0)
            for slot in sampled:
                pick = torch.multinomial(probs[slot], 1, generator=generators[slot])
                chosen[slot] = top_ids[slot, pick[0]]
        seen[torch.arange(len(chosen)), chosen] = True
        return chosen


class _Text:
    """One choice's text as its tokens arrive: incremental decoding, stop strings, what is safe to stream.

    Decoding only the last few tokens each step (the prefix/read offsets of TGI and vLLM) keeps the cost
    flat however long the answer; a piece that ends in U+FFFD is half a UTF-8 character, so it waits.
    """

    def __init__(self, tokenizer, stop: list[str]):
        self.tokenizer = tokenizer
        self.stop = stop
        self.longest = max((len(s) for s in stop), default=0)
        self.text = ""
        self.stopped = False  # a stop string appeared; the text ends before it
        self.sent = 0  # characters of `text` handed out by `take`
        self._prefix = 0  # tokens[_prefix:_read] decode to the context for the next piece
        self._read = 0

    def add(self, tokens: list[int], *, final: bool = False) -> bool:
        """Take in the grown token list; True when a stop string appeared. `final`: flush half characters too."""
        before = self._decode(tokens[self._prefix : self._read])
        after = self._decode(tokens[self._prefix :])
        if len(after) <= len(before) or (after.endswith("\ufffd") and not final):
            return False
        start = max(0, len(self.text) - self.longest + 1)
        self.text += after[len(before) :]
        self._prefix, self._read = self._read, len(tokens)
        cuts = [i for i in (self.text.find(s, start) for s in self.stop) if i >= 0]
        if cuts:
            self.text, self.stopped = self.text[: min(cuts)], True
        return self.stopped

    def take(self, *, final: bool = False) -> str:
        """The text not handed out yet, less a tail that could still grow into a stop string."""
        end = len(self.text) if final or self.stopped else len(self.text) - self._held()
        piece = self.text[self.sent : end] if end > self.sent else ""
        self.sent = max(self.sent, end)
        return piece

    def _held(self) -> int:
        for size in range(min(len(self.text), self.longest - 1), 0, -1):
            if any(s.startswith(self.text[-size:]) for s in self.stop):
                return size
        return 0

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)
