"""StageRunner: every teacher call of a pipeline goes through here (cache, counters, progress).

Judge stages (every stage named `judge_*`) go to the judge, all others to the teacher; the judge is the
teacher unless a separate one is given. Judge calls ask for the top candidates' log-probabilities, so that a
verdict can be read as a probability where the judge can give one (generate/gate/scores.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from labtax.generate.cache import CallCache, call_key
from labtax.generate.outcome import Reject
from labtax.generate.pipelines.prompts import PromptSet
from labtax.teacher.base import Completion, ContextExceeded, EndpointUnusable, Likelihood, Scorer, TeacherError

# Replies longer than max_tokens x this many characters are rejected as oversized. Generous on purpose:
# English text averages about 4 characters a token, and code, long words or whitespace runs stay far below 16.
CHARS_PER_TOKEN = 16
JUDGE_TOP_LOGPROBS = 5  # candidates per token asked of a judge: enough to see every score digit


def is_judge_stage(stage: str) -> bool:
    return stage.startswith("judge")


FIELD_CUTS = (2, 4, 8)  # the longest field's share kept, in turn, once no seed example is left
LONG_FIELD = 400  # characters: a field shorter than this is not worth cutting


def prompt_variants(fields: dict, examples: Sequence[dict]) -> list[tuple[dict, list[dict]]]:
    """The prompt's fields and seed examples as asked, then shorter, for a model whose context window the
    prompt does not fit: one seed example fewer at a time, then the longest field (a document chunk, a
    context) cut to a half, a quarter, an eighth, at a word. Always the same list for the same prompt, so
    the cache finds what an earlier run asked, and every shard asks the same."""
    variants = [(fields, list(examples))]
    variants += [(fields, list(examples[:kept])) for kept in range(len(examples) - 1, -1, -1)]
    texts = {name: value for name, value in fields.items() if isinstance(value, str) and len(value) >= LONG_FIELD}
    if texts:
        name = max(texts, key=lambda field: (len(texts[field]), field))
        for cut in FIELD_CUTS:
            kept = texts[name][: len(texts[name]) // cut].rsplit(" ", 1)[0]
            variants.append(({**fields, name: f"{kept} [...]"}, []))
    return variants


@dataclass
class CallStats:
    teacher_calls: int = 0
    cached_calls: int = 0
    tokens: int = 0
    by_stage: dict = field(default_factory=dict)
    # judge replies (called or replayed) and how many of them came with log-probabilities: the run's
    # `judge_logprobs`, the same whether its calls were made now or replayed from the cache
    judged: int = 0
    judged_with_logprobs: int = 0
    shortened: int = 0  # calls answered with a prompt shortened to fit the context window (prompt_variants)


class StageRunner:
    def __init__(self, teacher, cache: CallCache, prompts: PromptSet, progress=None, judge=None):
        self.teacher = teacher
        self.judge = judge if judge is not None else teacher
        self.cache = cache
        self.prompts = prompts
        self.progress = progress
        self.stats = CallStats()
        # The gate's probability threshold per judge stage, where the leaf's calibration chose one.
        self.thresholds: dict[str, float] = {}
        # A stage's max_tokens where the leaf's own seeds need more than its prompt file's (seeds.LeafShape).
        self.max_tokens: dict[str, int] = {}

    def answerer(self, stage: str):
        """The model that answers `stage`: the judge for judge stages, else the teacher."""
        return self.judge if is_judge_stage(stage) else self.teacher

    async def call(self, stage: str, fields: dict, index: int, examples: Sequence[dict] = ()) -> Completion:
        """One completion for `stage` of candidate `index`; a failed request or an unusable reply becomes a Reject,
        except an endpoint that cannot be reached at all (EndpointUnusable ends the run)."""
        spec = self.prompts[stage]
        max_tokens = max(spec.max_tokens, self.max_tokens.get(stage, 0))
        settings = {
            "temperature": spec.temperature,
            "max_tokens": max_tokens,
            "seed": index,
            "prompts": self.prompts.tag,
            "stage": stage,
        }
        answerer = self.answerer(stage)
        # The model that answers is in the key: a judge never replays the teacher's reply, nor the reverse.
        # (top_logprobs is not: it does not change the reply, and the keys stay those of runs before it.)
        # The prompt, then shorter ones for a context window it does not fit (prompt_variants): the first one the
        # cache holds answers, so a re-run asks nothing that the run before it was answered.
        keyed = [
            (call_key(answerer.model, messages, settings), messages)
            for messages in (spec.messages(f, e) for f, e in prompt_variants(fields, examples))
        ]
        used, cached = next(((n, c) for n, (key, _) in enumerate(keyed) if (c := self.cache.get(key))), (0, None))
        if cached is not None:
            self.stats.cached_calls += 1
            completions = [Completion(**choice) for choice in cached]
        else:
            for used, (_, messages) in enumerate(keyed):
                try:
                    completions = await answerer.complete(
                        messages,
                        n=1,
                        temperature=spec.temperature,
                        max_tokens=max_tokens,
                        seed=index,
                        top_logprobs=JUDGE_TOP_LOGPROBS if is_judge_stage(stage) else 0,
                    )
                    break
                except EndpointUnusable:
                    raise  # the run's end, not this candidate's (generate.py says so)
                except ContextExceeded as exc:
                    if used == len(keyed) - 1:
                        raise Reject(stage, "teacher_error", str(exc)) from None
                except TeacherError as exc:
                    raise Reject(stage, "teacher_error", str(exc)) from None
            self.stats.teacher_calls += 1
            self.stats.tokens += completions[0].prompt_tokens + completions[0].completion_tokens
        key = keyed[used][0]
        self.stats.shortened += used > 0
        self.stats.by_stage[stage] = self.stats.by_stage.get(stage, 0) + 1
        if is_judge_stage(stage):
            self.stats.judged += 1
            self.stats.judged_with_logprobs += completions[0].top_logprobs is not None
        if self.progress is not None:
            self.progress.advance(stage, index)
        for completion in completions:
            problem = reply_problem(completion.text, max_tokens)
            if problem:
                # Not cached: a re-run asks again. Checked on cached replies too (older entries).
                raise Reject(stage, problem[0], problem[1], reply=preview(completion.text))
        if cached is None:
            # In a thread: the write's open/rename syscalls would otherwise stall every call in flight.
            await asyncio.to_thread(self.cache.put, key, [_entry(c) for c in completions])
        return completions[0]

    async def loglikelihood(self, contexts: list[list[dict]], continuation: str) -> list[Likelihood | None] | None:
        """The judge model's log P(continuation | context) for each context (gate/relevance.py), cached like a
        call; None when the judge cannot score (a chat endpoint). The cache holds it as one choice whose text
        is the JSON list, so caches, shards and merges treat it as any other entry. `scorer` 2: scores of rows
        never padded (the embedded scorer's padded bfloat16 rows were off by up to 0.6 nats): earlier ones miss."""
        scorer = self.judge
        if not isinstance(scorer, Scorer):
            return None
        key = call_key(
            scorer.model, [{"contexts": contexts, "continuation": continuation}], {"stage": "relevance", "scorer": 2}
        )
        cached = self.cache.get(key)
        values = _scores(cached[0]["text"], len(contexts)) if cached is not None else None
        if values is None:
            try:
                values = list(await scorer.loglikelihood(contexts, continuation))
            except EndpointUnusable:
                raise
            except TeacherError as exc:
                raise Reject("relevance", "teacher_error", str(exc)) from None
            self.stats.teacher_calls += 1
            pairs = [None if v is None else [v.total, v.end] for v in values]
            entry = Completion(json.dumps(pairs), "score")
            await asyncio.to_thread(self.cache.put, key, [_entry(entry)])
        else:
            self.stats.cached_calls += 1
        self.stats.by_stage["relevance"] = self.stats.by_stage.get("relevance", 0) + 1
        if self.progress is not None:
            self.progress.advance("relevance")
        return values


def _scores(text: str, count: int) -> list[Likelihood | None] | None:
    """A cached score entry's list, or None when it is not `count` [total, end] pairs or nulls (asked again)."""
    try:
        values = json.loads(text)
    except ValueError:
        return None
    if not isinstance(values, list) or len(values) != count:
        return None
    out: list[Likelihood | None] = []
    for value in values:
        numbers = isinstance(value, list) and len(value) == 2
        numbers = numbers and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        if value is not None and not numbers:
            return None
        out.append(None if value is None else Likelihood(float(value[0]), float(value[1])))
    return out


def _entry(completion: Completion) -> dict:
    """A cache entry's choice; `top_logprobs` only where there are some (entries stay as before without)."""
    entry = asdict(completion)
    if entry.get("top_logprobs") is None:
        entry.pop("top_logprobs", None)
    return entry


def reply_problem(text: str, max_tokens: int) -> tuple[str, str] | None:
    """(reason, detail) when a reply cannot be used whatever it says: longer than the token budget allows
    (the endpoint ignored max_tokens), or not encodable text (a lone surrogate such as \\ud800 is valid
    JSON, but no file can hold it). None for a usable reply."""
    limit = max_tokens * CHARS_PER_TOKEN
    if len(text) > limit:
        return (
            "oversized",
            f"the reply has {len(text):,} characters, more than max_tokens {max_tokens} x {CHARS_PER_TOKEN} characters a token allows (the endpoint ignored max_tokens)",
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (
            "invalid_text",
            f"the reply is not valid Unicode text: {exc.reason} at character {exc.start} ({text[exc.start : exc.end].encode('utf-8', 'backslashreplace').decode()})",
        )
    return None


def preview(text: str, limit: int = 2000) -> str:
    """A bounded, always-encodable copy of a bad reply for rejected.jsonl (never 5 MB, never a surrogate)."""
    head = text[:limit].encode("utf-8", "backslashreplace").decode("utf-8")
    return head if len(text) <= limit else f"{head}... [{len(text):,} characters in all]"
