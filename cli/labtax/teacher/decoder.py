"""The embedded teacher's engine (worker thread only): continuous batching over one shared, left-padded KV cache,
prompts prefilled in groups of similar length with a memory of shared prompt starts, per-row sampling, and
stop strings and streaming followed on the decoded text. teacher/embedded.py owns the queue in front of it;
teacher/scoring.py scores given replies with the same model.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import random
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from labtax.teacher import scoring
from labtax.teacher.base import Completion, Likelihood, TeacherError

PREFILL_GROUP = 8  # prompts per prefill forward pass
TRIM_COLUMNS = 64  # drop a batch's unused left columns once there are this many
# Prompt tokens whose keys/values are kept for reuse (~760 MB in float32, half in bf16): every leaf in flight
# keeps its judges' shared instructions and examples (~500-1,500 tokens a stage) while the others run.
PREFIX_TOKENS = 16384
MIN_PREFIX = 64  # a shared start shorter than this (or than a quarter of the prompt) is run again


@dataclass
class Request:
    messages: list
    n: int
    temperature: float
    max_tokens: int
    seed: int | None
    stop: list[str] = field(default_factory=list)
    on_text: Callable[[int, str, str | None], None] | None = None
    cancel: threading.Event | None = None
    top_logprobs: int = 0
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)

    @property
    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()


@dataclass
class ScoreRequest:
    """A request to score a given reply after each of several conversations (one forward pass, no decoding)."""

    contexts: list
    continuation: str
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)
    n: int = 0  # takes no row of the decoding batch


@dataclass
class Row:
    """One choice being decoded."""

    request: Request
    choice: int
    prompt: list[int]
    limit: int  # new tokens allowed: max_tokens, or less where the context runs out
    generator: Any  # torch.Generator (torch is imported lazily)
    text: TextStream | None  # followed token by token only where someone needs it (stop strings, streaming)
    tokens: list[int] = field(default_factory=list)
    logprobs: list[dict[str, float]] = field(default_factory=list)


@dataclass
class Batch:
    """The rows decoding together and their tensors, row-aligned: a KV cache left-padded to one width,
    its attention mask, each row's last position, the pending next-token logits, the tokens seen."""

    rows: list[Row]
    cache: Any
    mask: Any
    positions: Any
    logits: Any
    temperatures: Any
    seen: Any
    pending: dict = field(default_factory=dict)  # id(request) -> {choice: Completion} finished so far


class Decoder:
    """Owns the model; prefills admitted requests and decodes the running batch. Worker thread only."""

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
        self.prefixes: OrderedDict[tuple[int, ...], list] = OrderedDict()  # prompt -> its keys/values per layer
        self.prefix_tokens = 0
        self.stats = {"prefilled_tokens": 0, "reused_tokens": 0}

    @classmethod
    def load(cls, dtype: str, threads: int, **sampling) -> Decoder:
        import torch

        from labtax.teacher.smollm import load_model_and_tokenizer

        torch.set_num_threads(threads)
        model, tokenizer = load_model_and_tokenizer(dtype=dtype)
        return cls(model, tokenizer, **sampling)

    def encode(self, messages) -> list[int]:
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def score(self, contexts: list[list[dict]], continuation: str) -> list[Likelihood | None]:
        """How likely `continuation` is after each context (teacher/scoring.py), with this decoder's model."""
        return scoring.score(self.model, self.tokenizer, self.context, contexts, continuation)

    # -- admission ------------------------------------------------------------------------------------
    def admit(self, state: Batch | None, requests: list[Request]) -> Batch | None:
        """Prefill the requests' prompts and add their rows to the batch. A request that cannot run (a bad
        chat template, a prompt past the context) fails alone; a failed prefill fails the newcomers only."""
        import torch

        rows: list[Row] = []
        for request in requests:
            if request.cancelled:
                request.future.set_exception(TeacherError("the request was cancelled"))
                continue
            try:
                prompt = self.encode(request.messages)
            except Exception as exc:
                request.future.set_exception(TeacherError(f"cannot apply the chat template: {exc}"))
                continue
            room = self.context - len(prompt)
            if room < 1:
                request.future.set_exception(
                    TeacherError(f"prompt of {len(prompt)} tokens exceeds the model's context of {self.context}")
                )
                continue
            for choice in range(request.n):
                seed = random.getrandbits(62) if request.seed is None else (int(request.seed) * 1009 + choice) % 2**62
                text = TextStream(self.tokenizer, request.stop) if request.stop or request.on_text else None
                generator = torch.Generator().manual_seed(seed)
                rows.append(Row(request, choice, prompt, min(request.max_tokens, room), generator, text))
        if not rows:
            return state
        try:
            with torch.inference_mode():
                logits, layers, mask = self._prefill([row.prompt for row in rows])
        except Exception as exc:  # a bug or an out-of-memory: these requests fail, the batch goes on
            for request in {id(row.request): row.request for row in rows}.values():
                request.future.set_exception(TeacherError(f"embedded generation failed: {type(exc).__name__}: {exc}"))
            return state
        new = Batch(
            rows=rows,
            cache=layers,
            mask=mask,
            positions=mask.sum(dim=-1, keepdim=True) - 1,
            logits=logits,
            temperatures=torch.tensor([row.request.temperature for row in rows], dtype=torch.float32),
            seen=torch.zeros(len(rows), logits.shape[-1], dtype=torch.bool),
        )
        if state is None or not state.rows:
            new.cache = self._as_cache(layers)
            if state is not None:
                new.pending = state.pending
            return new
        return self._join(state, new)

    def _prefill(self, prompts: list[list[int]]):
        """Logits after each prompt, its per-layer keys/values and attention mask, left-padded to the longest.

        On a CPU the prompt's forward pass is most of a call's cost, so it is spent only on tokens never seen:
        a prompt that starts like a recent one (a leaf's judge calls share their instructions and examples and
        differ in the last turn) reuses that one's keys/values for the common start and runs only the rest
        (causal attention: a prefix's keys/values do not depend on what follows it). The other prompts run in
        groups of similar length (a group closes when padding would pass ~15% of its tokens), each distinct
        prompt once: padding a 300-token judge prompt to a 1,300-token one would cost four times its work.
        """
        import torch
        from transformers import DynamicCache

        distinct = sorted({tuple(p) for p in prompts}, key=len)
        done: dict[tuple[int, ...], tuple] = {}  # prompt -> (logits [1, vocab], [(keys, values)] unpadded)
        fresh = []
        for prompt in distinct:
            reuse = self._known_prefix(prompt)
            if reuse is None:
                fresh.append(prompt)
                continue
            known, length = reuse
            cache = self._as_cache([(k[:, :, :length], v[:, :, :length]) for k, v in known])
            out = self.model(
                input_ids=torch.tensor([prompt[length:]], dtype=torch.long),
                attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                position_ids=torch.arange(length, len(prompt)).unsqueeze(0),
                use_cache=True,
                logits_to_keep=1,
                **{self.cache_kwarg: cache},
            )
            done[prompt] = (out.logits[:, -1, :].float(), _kv(cache))
            self.stats["reused_tokens"] += length
        groups: list[list[tuple[int, ...]]] = [[]]
        for prompt in fresh:
            group = groups[-1]
            tokens = sum(map(len, group)) + len(prompt)
            if group and (len(group) >= PREFILL_GROUP or len(prompt) * (len(group) + 1) > 1.15 * tokens):
                groups.append([prompt])
            else:
                group.append(prompt)
        for group in filter(None, groups):
            longest = len(group[-1])
            ids = torch.tensor([[self.pad_id] * (longest - len(p)) + list(p) for p in group], dtype=torch.long)
            mask = torch.tensor([[0] * (longest - len(p)) + [1] * len(p) for p in group], dtype=torch.long)
            cache = DynamicCache()
            out = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                use_cache=True,
                logits_to_keep=1,
                **{self.cache_kwarg: cache},
            )
            layers = _kv(cache)
            for row, prompt in enumerate(group):
                pad = longest - len(prompt)
                kv = [(k[row : row + 1, :, pad:].clone(), v[row : row + 1, :, pad:].clone()) for k, v in layers]
                done[prompt] = (out.logits[row : row + 1, -1, :].float(), kv)
        self.stats["prefilled_tokens"] += sum(len(p) for p in distinct)
        for prompt in distinct:
            self._remember(prompt, done[prompt][1])
        width = len(distinct[-1])
        index = {prompt: i for i, prompt in enumerate(distinct)}
        pick = torch.tensor([index[tuple(p)] for p in prompts], dtype=torch.long)
        layers = [
            tuple(
                torch.cat([_pad_left(done[p][1][layer][part], width - len(p)) for p in distinct])[pick]
                for part in (0, 1)
            )
            for layer in range(len(done[distinct[0]][1]))
        ]
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in distinct], dtype=torch.long)[pick]
        return torch.cat([done[p][0] for p in distinct])[pick], layers, mask

    def _known_prefix(self, prompt: tuple[int, ...]):
        """The remembered keys/values sharing the longest start with `prompt`, and how many tokens of it to
        reuse (at least one token is left to run, for the logits); None when no start is worth reusing."""
        best, length = None, 0
        for known, layers in self.prefixes.items():
            common = _common_start(known, prompt)
            if common > length:
                best, length = (known, layers), common
        length = min(length, len(prompt) - 1)
        if best is None or length < MIN_PREFIX or length < len(prompt) // 4:
            return None
        self.prefixes.move_to_end(best[0])
        return best[1], length

    def _remember(self, prompt: tuple[int, ...], layers) -> None:
        """Keep a prompt's keys/values for later prompts that start the same way, least recently used out
        first, within PREFIX_TOKENS tokens (~46 KB each in float32 for this model)."""
        if len(prompt) > PREFIX_TOKENS:
            return
        if prompt in self.prefixes:
            self.prefixes.move_to_end(prompt)
            return
        self.prefixes[prompt] = layers
        self.prefix_tokens += len(prompt)
        while self.prefix_tokens > PREFIX_TOKENS:
            evicted, _ = self.prefixes.popitem(last=False)
            self.prefix_tokens -= len(evicted)

    def _as_cache(self, layers):
        from transformers import DynamicCache

        cache = DynamicCache()
        for i, (keys, values) in enumerate(layers):
            cache.update(keys, values, i)
        return cache

    def _join(self, state: Batch, new: Batch) -> Batch:
        """The running batch plus the newcomers, both left-padded to the wider of the two."""
        import torch
        import torch.nn.functional as F

        old_width, new_width = state.mask.shape[1], new.mask.shape[1]
        width = max(old_width, new_width)
        layers = [
            (
                torch.cat([_pad_left(k, width - old_width), _pad_left(nk, width - new_width)]),
                torch.cat([_pad_left(v, width - old_width), _pad_left(nv, width - new_width)]),
            )
            for (k, v), (nk, nv) in zip(_kv(state.cache), new.cache)
        ]
        return Batch(
            rows=state.rows + new.rows,
            cache=self._as_cache(layers),
            mask=torch.cat([F.pad(state.mask, (width - old_width, 0)), F.pad(new.mask, (width - new_width, 0))]),
            positions=torch.cat([state.positions, new.positions]),
            logits=torch.cat([state.logits, new.logits]),
            temperatures=torch.cat([state.temperatures, new.temperatures]),
            seen=torch.cat([state.seen, new.seen]),
            pending=state.pending,
        )

    # -- decoding -------------------------------------------------------------------------------------
    def step(self, state: Batch) -> list[tuple[Request, list[Completion]]]:
        """Pick each row's next token, finish what ended, run the forward pass for the rest. Returns the
        requests completed in this step with their choices, for the caller to resolve."""
        import torch

        done: list[tuple[Request, list[Completion]]] = []
        try:
            with torch.inference_mode():
                chosen = self._sample(state.logits, state.temperatures, [r.generator for r in state.rows], state.seen)
                keep = []
                for slot, row in enumerate(state.rows):
                    finish = self._advance(row, int(chosen[slot]), state.logits[slot])
                    if finish is None:
                        keep.append(slot)
                    else:
                        completed = self._finish(state, row, finish)
                        if completed is not None:
                            done.append(completed)
                if len(keep) < len(state.rows):
                    self._select(state, keep, chosen)
                    chosen = chosen[torch.tensor(keep, dtype=torch.long)] if keep else chosen[:0]
                if state.rows:
                    state.mask = torch.cat([state.mask, state.mask.new_ones(len(state.rows), 1)], dim=-1)
                    state.positions = state.positions + 1
                    out = self.model(
                        input_ids=chosen.unsqueeze(-1),
                        attention_mask=state.mask,
                        position_ids=state.positions,
                        use_cache=True,
                        logits_to_keep=1,
                        **{self.cache_kwarg: state.cache},
                    )
                    state.logits = out.logits[:, -1, :].float()
        except Exception as exc:  # a bug or an out-of-memory: the running requests fail, the teacher lives on
            for request in {id(row.request): row.request for row in state.rows}.values():
                if not request.future.done():
                    request.future.set_exception(
                        TeacherError(f"embedded generation failed: {type(exc).__name__}: {exc}")
                    )
            state.rows, state.pending = [], {}
        return done

    def _advance(self, row: Row, token: int, logits) -> str | None:
        """Take one token into the row; its finish reason when it ended."""
        request, text = row.request, row.text
        if request.cancelled:
            return "cancelled"
        finish = None
        if token in self.stop_ids:
            finish = "stop"
        else:
            row.tokens.append(token)
            if request.top_logprobs:
                row.logprobs.append(self._top(logits, request.top_logprobs))
            if text is not None and text.add(row.tokens):
                finish = "stop"  # a stop string appeared: no more forward passes for it
            elif len(row.tokens) >= row.limit:
                finish = "length"
        if text is not None:
            if finish is not None and not text.stopped and text.add(row.tokens, final=True):
                finish = "stop"
            if request.on_text is not None:
                piece = text.take(final=finish is not None)
                if piece or finish:
                    request.on_text(row.choice, piece, finish)
        return finish

    def _finish(self, state: Batch, row: Row, finish: str) -> tuple[Request, list[Completion]] | None:
        """Record a finished choice; when it was its request's last, the request and its choices."""
        request = row.request
        if request.future.done():
            return None
        if finish == "cancelled":
            state.pending.pop(id(request), None)
            request.future.set_exception(TeacherError("the request was cancelled"))
            return None
        text = row.text.text if row.text is not None else self.tokenizer.decode(row.tokens, skip_special_tokens=True)
        extra = {"top_logprobs": row.logprobs} if request.top_logprobs else {}
        finished = state.pending.setdefault(id(request), {})
        finished[row.choice] = Completion(
            text=text, finish_reason=finish, prompt_tokens=0, completion_tokens=len(row.tokens), **extra
        )
        if len(finished) < request.n:
            return None
        del state.pending[id(request)]
        choices = [finished[k] for k in sorted(finished)]
        choices[0].prompt_tokens = len(row.prompt)  # usage belongs to the call, as in the OpenAI backend
        return request, choices

    def _select(self, state: Batch, keep: list[int], chosen) -> None:
        """Drop finished rows; then drop the left columns no remaining row uses, so the width stays the
        longest live row's and a batch that never drains does not grow without bound."""
        import torch

        index = torch.tensor(keep, dtype=torch.long)
        state.rows = [state.rows[slot] for slot in keep]
        if not keep:
            return
        state.cache.batch_select_indices(index)
        state.mask, state.positions, state.temperatures, state.seen = (
            state.mask[index],
            state.positions[index],
            state.temperatures[index],
            state.seen[index],
        )
        used = state.mask.any(dim=0).nonzero()
        start = int(used[0]) if len(used) else 0
        if start >= TRIM_COLUMNS:
            state.mask = state.mask[:, start:]
            state.cache = self._as_cache([(k[:, :, start:], v[:, :, start:]) for k, v in _kv(state.cache)])

    def _top(self, logits, count: int) -> dict[str, float]:
        """The `count` likeliest next tokens as text -> log-probability, from the model's own distribution
        (before the repetition penalty and temperature, as OpenAI-compatible servers report them)."""
        import torch

        values, ids = torch.log_softmax(logits.float(), dim=-1).topk(count)
        top: dict[str, float] = {}
        for value, token in zip(values.tolist(), ids.tolist()):
            top.setdefault(self.tokenizer.decode([token]), value)  # two ids with one text: keep the likelier
        return top

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


def _kv(cache) -> list:
    """(keys, values) per layer of a DynamicCache, under transformers 4 (key_cache) and 5 (layers)."""
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache))


def _common_start(first, second) -> int:
    """How many leading tokens two prompts share."""
    count = 0
    for a, b in zip(first, second):
        if a != b:
            break
        count += 1
    return count


def _pad_left(tensor, count: int):
    """Left-pad a [batch, heads, positions, dim] tensor with `count` masked-out positions."""
    import torch.nn.functional as F

    return F.pad(tensor, (0, 0, count, 0)) if count else tensor


class TextStream:
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
