"""One `labtax generate` session, from the selection to the summary: the settings (the command line's last),
the leaves that pass lint (this shard's, with --shard), then the run: teacher and judge up and down, the
executor (this process, or Ray actors), the shard's manifest, and what a failure means in the user's terms.

It sits in `scale`, the one layer that may import both the generate stage and the teacher backends (generate
itself sees only the Teacher protocol, and never imports the Ray executor above it). The command parses
options, calls `prepare` and `run`, and prints.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from labtax.config import Endpoints
from labtax.errors import LabtaxError

if TYPE_CHECKING:
    from labtax.config import Config
    from labtax.generate.plan import LeafSelection, PlannedLeaf
    from labtax.generate.run import Settings
    from labtax.records.types import RunSummary
    from labtax.scale.shards import Shard
    from labtax.select import Selection
    from labtax.teacher.base import TeacherInfo


@dataclass(frozen=True)
class Request:
    """What the command line asks of a generate run (options only, nothing resolved yet)."""

    output: Path
    num_samples: int = 5
    max_attempts: int = 4
    endpoints: Endpoints = field(default_factory=lambda: Endpoints())
    offline: bool = False
    calibrate: bool = True
    keep_unvetted: bool = False
    progress: bool | None = None  # None: bars in a terminal, else a plain line now and then
    shard: str | None = None  # "I/N"
    executor: str = "local"  # or "ray"
    ray_address: str | None = None
    ray_actors: int | None = None
    params: dict = field(default_factory=dict)  # every option as given: a shard's manifest records its retry command


@dataclass
class Prepared:
    """The run decided, before any teacher is asked: the settings, the whole selection and this run's part."""

    request: Request
    config: Config
    settings: Settings
    whole: LeafSelection  # every selected leaf that passes lint, with the skipped ones
    chosen: LeafSelection  # this run's part of it (one shard's, or all of it)
    shard: Shard | None

    def plan(self) -> list[PlannedLeaf]:
        """The dry run: per leaf its pipeline and expected teacher calls."""
        from labtax.generate.plan import plan

        request = self.request
        return plan(
            self.chosen.leaves,
            request.num_samples,
            request.max_attempts,
            self.settings.chunk_tokens,
            offline=request.offline,
        )


def prepare(selection: Selection, request: Request) -> Prepared:
    """The settings (profile -> file -> command line) and the leaves this run generates."""
    from labtax.config import Overrides, load_config
    from labtax.generate.plan import select_leaves, take
    from labtax.generate.run import Settings
    from labtax.scale import shards

    shard = shards.parse(request.shard) if request.shard else None
    # --offline reaches lint's document check too (LT022, on in CI): it must not fetch either
    config = load_config(selection.root, overrides=Overrides(offline=request.offline))
    whole = select_leaves(selection, config)
    chosen = take(whole, shard.owns) if shard else whole
    settings = Settings(
        num_samples=request.num_samples,
        max_attempts=request.max_attempts,
        offline=request.offline,
        calibrate=request.calibrate,
        keep_unvetted=request.keep_unvetted,
    )
    return Prepared(request, config, settings, whole, chosen, shard)


def announce(config, endpoints: Endpoints, echo):
    """Which teacher and which judge serve, and why (the first lines a person reads); a judge setting that cannot
    serve is exit 2 before any call. Generate and vet alike."""
    from labtax.teacher.resolve import describe_judge, describe_teacher

    info = describe_teacher(config, base_url=endpoints.base_url, model=endpoints.model)
    echo(f"teacher: {info.name} {info.model} ({info.reason})")
    judge_info = describe_judge(config, info, base_url=endpoints.judge_base_url, model=endpoints.judge_model)
    if judge_info is not None:
        if judge_info.details.get("problems"):
            raise LabtaxError(judge_info.details["problems"][0])
        echo(f"judge: {judge_info.name} {judge_info.model} ({judge_info.reason})")
    return info, judge_info


def run(prepared: Prepared, echo: Callable[[str], None]) -> RunSummary | None:
    """Generate the prepared leaves; the run's summary (None: an empty shard, whose manifest is all it writes).
    `echo` gets the lines a person follows the run by (which teacher, which judge, the executor's news)."""
    from labtax.teacher.resolve import call_timeout

    request, config = prepared.request, prepared.config
    timeout = call_timeout(config, request.endpoints.timeout)  # a bad setting fails now, not after the first leaf
    info, judge_info = announce(config, request.endpoints, echo)
    manifest = None
    if prepared.shard:
        from labtax.scale.manifest import start

        manifest = start(
            request.output,
            prepared.shard,
            prepared.whole,
            prepared.chosen,
            prepared.settings,
            info,
            request.params,
            judge_info,
        )
        if not prepared.chosen.leaves:
            echo(
                f"shard {prepared.shard}: none of the {len(prepared.whole.leaves)} leaves; wrote {request.output}/labtax-shard.json"
            )
            return None
    summary = _execute(prepared, info, judge_info, timeout, echo)
    if manifest is not None:
        manifest.finish(summary)
    return summary


def _execute(
    prepared: Prepared, info: TeacherInfo, judge_info: TeacherInfo | None, timeout: float, echo: Callable[[str], None]
) -> RunSummary:
    """The leaves on the chosen executor, with progress; a failure that is no verdict on the data becomes an
    error naming the fix (finished calls are cached either way)."""
    import asyncio

    from labtax.generate.pipelines import pipeline_for
    from labtax.generate.progress import StageProgress, expected_calls
    from labtax.teacher.base import EndpointUnusable

    request, leaves = prepared.request, prepared.chosen.leaves
    output = request.output
    stages = list(dict.fromkeys(stage for leaf in leaves for stage in pipeline_for(leaf).STAGES))
    bar = StageProgress(
        stages,
        enabled=request.progress if request.executor == "local" else False,
        totals=expected_calls(leaves, request.num_samples),
        leaves=len(leaves),
    )
    if request.executor == "ray" and request.endpoints.judge_tokenizer is not None:
        raise LabtaxError("--judge-tokenizer runs with --executor local only; leave it out on Ray")
    try:
        if request.executor == "ray":
            from labtax.scale.ray_executor import run_on_ray

            return run_on_ray(
                leaves,
                prepared.config,
                output,
                prepared.settings,
                info,
                request.endpoints.concurrency,
                request.ray_address,
                request.ray_actors,
                prepared.chosen.skipped,
                echo,
                judge=judge_info,
                timeout=timeout,
            )
        return asyncio.run(_local(prepared, info, timeout, bar))
    except EndpointUnusable as exc:  # every later call would fail too: stop, and say it is no verdict on the data
        raise LabtaxError(
            f"{exc}; then re-run the same command: finished calls are cached in {output}/.cache and are not asked again"
        ) from None
    except OSError as exc:  # a file or the disk, not the teacher (a teacher's failure only rejects a candidate)
        where = f"{exc.filename}" if exc.filename else f"under --output {output}"
        raise LabtaxError(
            f"cannot write {where}: {exc.strerror or exc}; fix that path (a file in the way, permissions, a full disk) or pass another --output, then re-run: finished calls are cached"
        ) from None
    finally:
        bar.close()


async def _local(prepared: Prepared, info: TeacherInfo, timeout: float, bar) -> RunSummary:
    """The leaves in this process: the teacher (and the separate judge) opened for the run, closed after it."""
    from labtax.generate.run import run_generation

    request = prepared.request
    async with teachers(prepared.config, request.endpoints, info, timeout, bar.write) as (teacher, judge):
        return await run_generation(
            prepared.chosen.leaves,
            teacher,
            request.output,
            prepared.settings,
            progress=bar,
            on_leaf_done=bar.leaf_done,
            skipped=prepared.chosen.skipped,
            judge=judge,
        )


@asynccontextmanager
async def teachers(config: Config, endpoints: Endpoints, info: TeacherInfo, timeout: float, notice=None):
    """(teacher, judge or None) for the endpoints asked for, opened for the block and closed after it (generate
    and vet alike)."""
    from labtax.teacher.resolve import make_judge, make_teacher

    endpoint = {"concurrency": endpoints.concurrency, "timeout": timeout, "notice": notice}
    teacher = make_teacher(config, base_url=endpoints.base_url, model=endpoints.model, **endpoint)
    try:
        judge = make_judge(config, info, base_url=endpoints.judge_base_url, model=endpoints.judge_model, **endpoint)
        if endpoints.judge_tokenizer is not None:
            judge = await scoring(judge, teacher, endpoints.judge_tokenizer)
    except BaseException:
        await teacher.aclose()
        raise
    try:
        yield teacher, judge
    finally:
        await teacher.aclose()
        if judge is not None:
            await judge.aclose()


async def scoring(judge, teacher, tokenizer: Path):
    """The endpoint that judges (the separate judge, else the teacher), able to score given replies over its
    /v1/completions with the model's own chat template (teacher/endpoint_scorer.py), probed before the run."""
    from labtax.teacher.endpoint_scorer import ChatTemplate, ScoringJudge
    from labtax.teacher.openai_backend import OpenAITeacher

    backend = judge or teacher
    try:
        if not isinstance(backend, OpenAITeacher):
            raise LabtaxError(
                "--judge-tokenizer is for a judge on an OpenAI-compatible endpoint; the embedded judge scores "
                "replies itself: leave --judge-tokenizer out"
            )
        wrapped = ScoringJudge(backend, ChatTemplate(tokenizer), owns=judge is not None)
        await wrapped.probe()
    except BaseException:
        if judge is not None:
            await judge.aclose()
        raise
    return wrapped


@dataclass(frozen=True)
class VetRequest:
    """What the command line asks of `labtax vet`."""

    files: tuple[Path, ...]
    root: Path
    output: Path
    endpoints: Endpoints = field(default_factory=lambda: Endpoints())
    offline: bool = False
    calibrate: bool = True


def vet(request: VetRequest, echo: Callable[[str], None]) -> dict:
    """Vet the files' rows with generation's gate, write the four outputs; the summary."""
    import asyncio

    from labtax.config import Overrides, load_config
    from labtax.generate import vet as stage
    from labtax.generate.cache import CallCache
    from labtax.generate.run import Settings
    from labtax.records.layout import Layout
    from labtax.teacher.base import EndpointUnusable
    from labtax.teacher.resolve import call_timeout

    config = load_config(request.root, overrides=Overrides(offline=request.offline))
    timeout = call_timeout(config, request.endpoints.timeout)
    rows, bad = stage.read_rows(list(request.files))
    info, judge_info = announce(config, request.endpoints, echo)
    settings = Settings(offline=request.offline, calibrate=request.calibrate)
    cache = CallCache(Layout(request.output).calls)

    async def go() -> stage.Outcome:
        async with teachers(config, request.endpoints, info, timeout) as (teacher, judge):
            return await stage.vet(rows, bad, request.root, config, teacher, settings, cache, judge=judge)

    try:
        out = asyncio.run(go())
    except EndpointUnusable as exc:
        raise LabtaxError(
            f"{exc}; then re-run the same command: finished calls are cached in {request.output}/.cache"
        ) from None
    judged_by = judge_info or info
    run = {
        "files": [str(f) for f in request.files],
        "root": str(request.root),
        "teacher": info.name,
        "model": info.model,
        "judge": judged_by.name,
        "judge_model": judged_by.model,
        "calibrate": request.calibrate,
    }
    try:
        stage.write(request.output, out, run)
    except OSError as exc:
        raise LabtaxError(
            f"cannot write {exc.filename or request.output}: {exc.strerror or exc}; fix that path or pass another --output"
        ) from None
    return {"run": run, **out.summary}
