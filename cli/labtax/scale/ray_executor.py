"""`labtax generate --executor ray`: the leaves of one run on long-lived Ray actors (extra `labtax[ray]`).

- The unit of scheduling is the leaf. The driver keeps each actor busy with a few leaves at a time (enough
  to fill its share of the endpoint's budget) and hands out the next leaf as one finishes.
- `LeafWorker` is an async actor holding one OpenAI client per endpoint for its life (the teacher's, and the
  separate judge's when one is named; not a task per request); each leaf runs through `staged.run_leaf` into
  the shared --output, whose call cache every actor shares (listed once per actor, not per leaf).
- Requests in flight are bounded per actor (the client's semaphore) and across all actors by one
  `EndpointLimiter` actor per endpoint URL (a judge at the teacher's URL shares it): AIMD permits
  (`throttle.Aimd`), halved on 429/503, so N actors never put more than --concurrency requests on an endpoint
  between them; a retry waits out the answer's Retry-After. The limiters live on the driver's node. A worker
  reuses a permit for up to 4 requests while it has requests waiting (`throttle.LeasedPermits`): about half a
  round trip to the limiter per request instead of two.
- Actors restart and their leaf is retried when a worker process dies or its node goes away (max_restarts /
  max_task_retries; half a CPU each and spread over the nodes, so a restart finds room on a surviving node):
  the retry replays the leaf's finished calls from the cache, so only requests in flight are repeated.
- The driver holds the output folder's lock and rebuilds the artifacts once at the end: the result is the
  local run's (same per-leaf folders, same rebuild), whichever actor ran which leaf.

This is the only module that imports ray. --output and the taxonomy must be on a path every worker sees
(one machine, or storage mounted at the same path on every node); each actor checks that before any leaf.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray

from labtax.errors import LabtaxError
from labtax.records.layout import Layout
from labtax.records.types import RunSummary
from labtax.scale.merge import combine_runs
from labtax.scale.staged import STAGING, run_leaf
from labtax.scale.throttle import Aimd, LeasedPermits, ThrottledTeacher
from labtax.teacher.base import EndpointUnusable
from labtax.wording import counted

RESTARTS = 3  # per actor; its leaves are retried on the restarted actor


@ray.remote(num_cpus=0)
class EndpointLimiter:
    """The endpoint's AIMD permits, shared by every actor of the run."""

    def __init__(self, limit: int):
        self.aimd = Aimd(limit)

    async def acquire(self, holder: str) -> int:
        return await self.aimd.acquire(holder)

    async def release(self, granted_round: int, outcome: str, holder: str, earlier_ok: int = 0) -> None:
        await self.aimd.release(granted_round, outcome, holder, earlier_ok)

    async def forget(self, holder: str) -> int:
        return await self.aimd.forget(holder)

    async def stats(self) -> dict:
        return self.aimd.stats()


class ActorPermits:
    """Permits from the EndpointLimiter actor for one worker (`holder`: its actor id, kept across restarts);
    a release is sent without waiting for its answer."""

    def __init__(self, limiter: Any, holder: str):
        self.limiter = limiter
        self.holder = holder

    async def acquire(self) -> int:
        return await self.limiter.acquire.remote(self.holder)

    async def release(self, granted_round: int, outcome: str, earlier_ok: int = 0) -> None:
        self.limiter.release.remote(granted_round, outcome, self.holder, earlier_ok)


@ray.remote
class LeafWorker:
    """One long-lived worker: its own clients to the endpoints, leaves in, leaf summaries out."""

    def __init__(self, output: str, settings: Any, teacher: dict, judge: dict | None):
        """`teacher` and `judge` (None: the teacher judges) are endpoint specs: base_url, model, key, limit and
        the name of that endpoint's EndpointLimiter (a handle among the arguments would live in the object
        store, and a restart after that was released would fail)."""
        from labtax.generate.cache import CallCache

        self.output = Path(output)
        self.settings = settings
        self.holder = ray.get_runtime_context().get_actor_id() or ""
        self.teacher = self._client(teacher)
        self.judge = self._client(judge) if judge else None
        # One listing of the shared call cache for this worker's life, not one per leaf (thousands of leaves
        # over a cache of 10^5 entries). A leaf's calls are its own (its content is in every key), and a leaf
        # retried after a crash runs on a restarted worker, which lists the cache again.
        self.cache = CallCache(Layout(self.output).calls)

    def _client(self, spec: dict) -> ThrottledTeacher:
        from labtax.teacher.openai_backend import OpenAITeacher

        # retries: ThrottledTeacher's, so that every 429/503 reaches the limiter
        inner = OpenAITeacher(
            spec["base_url"],
            spec["key"],
            spec["model"],
            concurrency=spec["limit"],
            max_retries=0,
            role=spec.get("role", "teacher"),
            **({"timeout": spec["timeout"]} if "timeout" in spec else {}),
        )
        handle = ray.get_actor(spec["limiter"])
        ray.get(handle.forget.remote(self.holder))  # after a restart: the permits the dead process held
        return ThrottledTeacher(inner, LeasedPermits(ActorPermits(handle, self.holder)))

    async def check(self, root: str) -> dict:
        """Where this worker runs and what it cannot see (the driver refuses to start on any problem)."""
        from labtax import __version__

        problems = [
            f"{what} {path} is not a folder on this node"
            for what, path in (("--output", str(self.output)), ("the taxonomy root", root))
            if not Path(path).is_dir()
        ]
        return {
            "pid": os.getpid(),
            "node": ray.util.get_node_ip_address(),
            "node_id": ray.get_runtime_context().get_node_id(),
            "labtax": __version__,
            "problems": problems,
        }

    async def run(self, leaf: Any) -> dict:
        return await run_leaf(leaf, self.teacher, self.output, self.settings, judge=self.judge, cache=self.cache)


AUTH = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


@contextlib.contextmanager
def connected(address: str | None):
    """Join `address`, or start a private cluster on 127.0.0.1 (temp files under $RAY_TMPDIR, else /tmp/ray),
    for the block; a cluster this process started is shut down after it.

    A private cluster gets a token of its own in this process's environment (the cluster's processes inherit
    it), unless one is configured: Ray would otherwise write ~/.ray/auth_token, and a run leaves nothing in the
    home directory. The environment is restored afterwards."""
    if ray.is_initialized():
        yield
        return
    saved = {name: os.environ.get(name) for name in AUTH}
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            if not any(saved.values()):
                os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
            ray.init(include_dashboard=False, _node_ip_address="127.0.0.1", **quiet)
        yield
    finally:
        ray.shutdown()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_on_ray(
    leaves: list,
    config: Any,
    output: Path,
    settings: Any,
    teacher: Any,
    concurrency: int,
    address: str | None,
    actors: int | None,
    skipped: list[dict],
    echo: Callable[[str], None] = lambda line: None,
    judge: Any = None,
    timeout: float | None = None,
) -> RunSummary:
    """Generate `leaves` on Ray actors into `output`; return the summary, as run_generation does. `judge`: the
    separate judge's TeacherInfo (None: the teacher judges its own output)."""
    from labtax.generate import artifacts
    from labtax.generate.run import BUCKETS, now_iso

    if teacher.name != "openai":
        raise LabtaxError(
            "--executor ray needs an OpenAI-compatible endpoint teacher (--base-url or OPENAI_BASE_URL); the embedded teacher serves one process: use --executor local"
        )
    if teacher.details.get("problems"):
        raise LabtaxError(teacher.details["problems"][0])
    if judge is not None and judge.name != "openai":
        raise LabtaxError(
            "--executor ray needs the separate judge on an OpenAI-compatible endpoint (--judge-base-url, or --judge-model at the teacher's endpoint); the embedded model serves one process: use --executor local"
        )
    from labtax.teacher.resolve import judge_key, teacher_key

    # The keys as the local executor sends them: none to an endpoint the repository's settings chose.
    endpoints = {"teacher": endpoint(teacher, teacher_key(teacher), concurrency, timeout)}
    if judge is not None:
        endpoints["judge"] = endpoint(judge, judge_key(judge), concurrency, timeout, role="judge")
    output = Path(output).resolve()  # workers have other working folders
    started, wall = now_iso(), time.monotonic()
    with artifacts.output_lock(output, started):
        with connected(address):
            results, stats = _run(leaves, output, settings, endpoints, actors, echo)
        for url, counts in stats.items():
            # named by role, not URL: a URL can carry credentials, and CI logs are public
            roles = " and ".join(role for role, spec in endpoints.items() if spec["base_url"] == url)
            echo(
                "ray: {roles} endpoint: requests {requests}, peak {peak_in_flight} in flight (limit {maximum}), {congested} answered 429/503, {cuts}".format(
                    roles=roles, **{**counts, "cuts": counted(counts["cuts"], "cut")}
                )
            )
        run = combine_runs(
            [r["run"] for r in results], skipped=skipped, started=started, seconds=round(time.monotonic() - wall, 3)
        )
        return artifacts.write_run(output, BUCKETS, run)


def endpoint(info: Any, key: str | None, limit: int, timeout: float | None = None, role: str = "teacher") -> dict:
    """What a worker needs to reach one endpoint (its EndpointLimiter's name is added by _run)."""
    spec = {"base_url": info.details["base_url"], "model": info.model, "key": key, "limit": limit, "role": role}
    return spec if timeout is None else {**spec, "timeout": timeout}


def _run(
    leaves: list,
    output: Path,
    settings: Any,
    endpoints: dict[str, dict],
    actors: int | None,
    echo: Callable[[str], None],
) -> tuple[list[dict], dict]:
    """Start the limiters and workers, check the workers, run the leaves; the limiters' stats per endpoint URL."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    count = max(1, min(len(leaves), actors or max(1, int(cpus))))
    concurrency = endpoints["teacher"]["limit"]
    # Leaves at a time per actor: twice its share of the limit, so that its share stays busy even when each leaf
    # has only one request in flight (a candidate's stages run one after the other, a leaf starts with its
    # calibration and ends with a small round), and the last leaves do not start late (a long tail).
    per_actor = max(2, math.ceil(2 * concurrency / count))
    # One limiter per endpoint URL: a judge at the teacher's endpoint (another model there) shares its limit.
    # Limiters live on the driver's node: a worker node that goes away must not take the limit with it.
    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
    limiters: dict[str, Any] = {}
    names: dict[str, str] = {}
    for spec in endpoints.values():
        url = spec["base_url"]
        if url not in limiters:
            names[url] = f"labtax-limiter-{uuid.uuid4().hex[:12]}"
            # max_concurrency: every waiting permit is a call in progress; mypy does not apply class decorators.
            limiters[url] = EndpointLimiter.options(  # type: ignore[attr-defined]
                name=names[url], max_concurrency=100000, scheduling_strategy=here
            ).remote(spec["limit"])
        spec["limiter"] = names[url]
    workers: list = []
    try:
        # Half a CPU each, spread over the nodes: requests in flight need little CPU, and a worker whose node is
        # lost restarts on a surviving node with room for it (whole CPUs would leave it waiting for one forever).
        options = {
            "num_cpus": min(1.0, cpus / count) / 2,
            "max_restarts": RESTARTS,
            # A leaf is retried until its worker is dead for good: RESTARTS bounds the process deaths, not the
            # RPC failures while a lost node's worker restarts elsewhere (each of which would cost a retry).
            "max_task_retries": -1,
            "scheduling_strategy": "SPREAD",
        }
        workers = [
            LeafWorker.options(**options).remote(str(output), settings, endpoints["teacher"], endpoints.get("judge"))  # type: ignore[attr-defined]
            for _ in range(count)
        ]
        root = str(leaves[0].root) if leaves else str(output)
        checks = ray.get([w.check.remote(root) for w in workers])
        from labtax import __version__

        for found in checks:
            if found["labtax"] != __version__:
                found["problems"].append(f"labtax {found['labtax']} is installed there, {__version__} here")
            if found["problems"]:
                raise LabtaxError(
                    f"a Ray worker on {found['node']} cannot run this: {'; '.join(found['problems'])}; put --output and the taxonomy on storage every node mounts at the same path, with the same labtax"
                )
        nodes = len({found["node_id"] for found in checks})
        echo(
            f"ray: {counted(count, 'actor')} on {counted(nodes, 'node')}, up to {per_actor} leaves each at a time, {concurrency} requests in flight at most per endpoint"
        )
        results = _schedule(leaves, workers, per_actor)
        with contextlib.suppress(OSError):  # empty once every leaf is published
            (output / STAGING).rmdir()
        stats = {url: ray.get(limiter.stats.remote()) for url, limiter in limiters.items()}
    finally:
        for worker in workers:
            ray.kill(worker)
        for limiter in limiters.values():
            ray.kill(limiter)
    return results, stats


def _schedule(leaves: list, workers: list, per_actor: int) -> list[dict]:
    """Leaves to actors, `per_actor` at a time each, the next leaf to the actor that finished one."""
    queue = deque(sorted(leaves, key=lambda leaf: leaf.path))
    in_flight: dict[Any, tuple[int, Any]] = {}

    def submit(index: int) -> None:
        leaf = queue.popleft()
        in_flight[workers[index].run.remote(leaf)] = (index, leaf)

    for _ in range(per_actor):
        for index in range(len(workers)):
            if queue:
                submit(index)
    results = []
    while in_flight:
        ready, _ = ray.wait(list(in_flight), num_returns=1)
        index, leaf = in_flight.pop(ready[0])
        try:
            results.append(ray.get(ready[0]))
        except ray.exceptions.RayActorError:
            raise LabtaxError(
                f"the Ray worker generating {leaf.path} died {RESTARTS + 1} times; re-run the same command: finished calls are cached"
            ) from None
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(exc.cause, BaseException) else exc
            if isinstance(cause, LabtaxError | OSError | EndpointUnusable):
                raise cause from None
            raise
        if queue:
            submit(index)
    return results
