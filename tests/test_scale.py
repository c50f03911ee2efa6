"""Shards, manifests and merge (`labtax generate --shard I/N`, `labtax merge`), the per-leaf staging the Ray
executor runs, and the AIMD throttle, against the scripted OpenAI-compatible fake on 127.0.0.1.

The central claim: 1, 2 or 7 shards merged give the single run's bytes (bucket files, knowledge with context,
phase files and their recipes, rejected, held-out, per-leaf files; summary.json up to its wall-clock fields,
docs/scale.md)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shlex
import shutil
import time
from pathlib import Path

import pytest

from labtax.errors import LabtaxError
from labtax.scale import shards
from labtax.scale.merge import CALL_COUNTS, TIMING_LEAF, TIMING_RUN, combine_runs, safe_leaf_path
from labtax.scale.throttle import Aimd, LeasedPermits, ThrottledTeacher, classify
from labtax.teacher.base import TeacherError

from .conftest import run_labtax
from .fake_openai import FakeOpenAI, Reply, good_teacher, stage_of
from .test_generate import make_taxonomy

DATA_FILES = (
    "knowledge.jsonl",
    "foundational.jsonl",
    "compositional.jsonl",
    "knowledge_with_context.jsonl",
    "review/rejected.jsonl",
    "eval/heldout.jsonl",
    "phases/knowledge_recipe.yaml",
    "phases/knowledge_train_msgs.jsonl",
    "phases/skills_recipe.yaml",
    "phases/skills_train_msgs.jsonl",
)
COPY = "compositional_skills/writing/business/ceo_earnings_email"


def mixed_teacher(request: dict) -> Reply:
    """good_teacher, except that the pair judge fails about a third of the answers (by a hash of the request,
    so every run gets the same verdicts): review/rejected.jsonl has rows to compare too."""
    if stage_of(request) == "judge_pair":
        digest = hashlib.sha256(json.dumps(request["messages"], sort_keys=True).encode()).digest()
        if digest[0] % 3 == 0:
            return Reply("1")
    return good_teacher(request)


def taxonomy(root: Path, copies: int = 4) -> Path:
    """The four test leaves plus `copies` variants of the freeform one (distinct prompts, distinct calls)."""
    make_taxonomy(root)
    for k in range(copies):
        target = root / f"compositional_skills/writing/business/ceo_email_v{k}"
        shutil.copytree(root / COPY, target)
        leaf = target / "qna.yaml"
        text = leaf.read_text().replace("Draft an email", f"Draft an email (variant {k})", 1)
        # Every seed question too: the gate's calibration judges the held-out seeds, prompts without the task.
        leaf.write_text(re.sub(r"(question: \|\n)(\s+)", rf"\1\2(variant {k}) ", text))
    return root


def env(fake: FakeOpenAI) -> dict:
    return {"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-test", "LABTAX_TEACHER_MODEL": "fake-teacher"}


def invoke(*args: str, env: dict | None = None) -> tuple[int, str, str]:
    """`labtax ARGS` in this process (the console script's start-up, seconds on a busy machine, paid once per
    test that uses run_labtax instead): (status, stdout, stderr), a LabtaxError as main() reports it."""
    from click.testing import CliRunner

    from labtax.main import cli

    result = CliRunner().invoke(cli, list(args), env=env, standalone_mode=False)
    if isinstance(result.exception, LabtaxError):
        return result.exception.exit_code, result.stdout, f"labtax: error: {result.exception}\n"
    if result.exception is not None:
        raise result.exception
    return result.return_value or 0, result.stdout, result.stderr


def generate(root: Path, fake: FakeOpenAI, output: Path, *args: str) -> str:
    status, out, err = invoke(
        "generate",
        "--root",
        str(root),
        "-n",
        "2",
        "--no-progress",
        "--keep-unvetted",
        "--output",
        str(output),
        *args,
        env=env(fake),
    )
    assert status == 0, out + err
    return out


def leaf_folders(output: Path) -> list[Path]:
    return sorted(p.parent for p in output.rglob("samples.jsonl") if ".labtax-staging" not in p.parts)


def cache_keys(output: Path) -> set[str]:
    return {p.name for p in (output / ".cache" / "calls").glob("??/*.json")}


def assert_same_output(single: Path, other: Path, *, resumed: bool = False) -> None:
    """`other` holds the single run's bytes: every data file and per-leaf file; summary.json byte for byte once
    its wall-clock fields (TIMING_RUN, TIMING_LEAF) carry `other`'s values, i.e. everything else, key order
    and layout included, is identical. `resumed`: some leaves of `other` were generated again from the cache,
    so their call counts (CALL_COUNTS) are that run's, not the cold run's."""
    for name in DATA_FILES:
        assert (other / name).read_bytes() == (single / name).read_bytes(), name
    assert [p.relative_to(single) for p in leaf_folders(single)] == [p.relative_to(other) for p in leaf_folders(other)]
    for folder in leaf_folders(single):
        for name in ("samples.jsonl", "rejected.jsonl"):
            assert (other / folder.relative_to(single) / name).read_bytes() == (folder / name).read_bytes()
    expected, got = json.loads((single / "summary.json").read_text()), json.loads((other / "summary.json").read_text())
    for key in TIMING_RUN:
        expected["run"][key] = got["run"][key]
    for path, leaf in expected["leaves"].items():
        for key in TIMING_LEAF + (CALL_COUNTS if resumed else ()):
            leaf[key] = got["leaves"][path][key]
    for key in CALL_COUNTS if resumed else ():
        expected["totals"][key] = got["totals"][key]
    text = json.dumps(expected, indent=2, ensure_ascii=False, default=str) + "\n"  # fileio.write_json_atomic's form
    assert (other / "summary.json").read_text(encoding="utf-8") == text


# --- shards: which leaf goes where ----------------------------------------------------------------------------


def test_shard_of_is_a_stable_1_based_sha256_bucket():
    path = "compositional_skills/writing/business/ceo_earnings_email/qna.yaml"
    expected = 1 + int.from_bytes(hashlib.sha256(path.encode()).digest()[:8], "big") % 7
    assert shards.shard_of(path, 7) == expected == 4  # the same on every machine, Python and run
    assert shards.shard_of("knowledge/science/biology/photosynthesis/qna.yaml", 2) == 2
    assert shards.shard_of(path, 1) == 1
    paths = [f"knowledge/t/leaf_{i}/qna.yaml" for i in range(200)]
    split = shards.Shard(1, 5).split(paths)
    assert sorted(p for part in split.values() for p in part) == sorted(paths) and set(split) == {1, 2, 3, 4, 5}
    assert all(15 < len(part) < 65 for part in split.values())  # spread, not piled into one shard
    for index, part in split.items():
        assert all(shards.Shard(index, 5).owns(p) for p in part)


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "1/0", "a/b", "1/3/4", "-1/3", "1/100000"])
def test_a_bad_shard_is_refused_with_the_form(text):
    with pytest.raises(LabtaxError, match=r"I/N|between 1 and"):
        shards.parse(text)
    assert shards.parse(" 2 / 3 ") == shards.Shard(2, 3)


def test_take_keeps_a_shards_leaves_skipped_leaves_and_findings():
    from labtax.generate.plan import LeafSelection, take
    from labtax.lint.findings import Finding

    class Leaf:
        def __init__(self, path):
            self.path = path

    chosen = LeafSelection(
        [Leaf("a/qna.yaml"), Leaf("b/qna.yaml")],
        [{"leaf": "c/qna.yaml", "errors": ["1:1 LT001 x"]}],
        [Finding("c/qna.yaml", 1, 1, "LT001", "error", "x")],
    )
    mine = take(chosen, lambda path: path != "a/qna.yaml")
    assert [leaf.path for leaf in mine.leaves] == ["b/qna.yaml"]
    assert mine.skipped == chosen.skipped and mine.errors == chosen.errors
    assert take(chosen, lambda path: False).skipped == []


def test_combine_runs_is_a_deterministic_function_of_the_runs():
    a = {"teacher": "openai", "model": "m", "started": "2026-01-01T00:00:05+00:00", "seconds": 2.0, "num_samples": 2}
    b = {**a, "started": "2026-01-01T00:00:01+00:00", "seconds": 3.5}
    a |= {"pipeline_versions": ["x@v6"], "leaves": ["b/qna.yaml"], "skipped": [], "retries": {"429": 1}}
    b |= {"pipeline_versions": ["x@v6", "k@v7"], "leaves": ["a/qna.yaml"], "skipped": [], "retries": {"429": 2}}
    run = combine_runs([a, b], skipped=[{"leaf": "z"}])
    assert list(run) == list(a)  # generate's key order
    assert run["started"] == "2026-01-01T00:00:01+00:00" and run["seconds"] == 3.5
    assert run["leaves"] == ["a/qna.yaml", "b/qna.yaml"] and run["pipeline_versions"] == ["k@v7", "x@v6"]
    assert run["retries"] == {"429": 3} and run["skipped"] == [{"leaf": "z"}]
    assert combine_runs([b, a], skipped=[{"leaf": "z"}]) == run
    with pytest.raises(LabtaxError, match=r"disagree on run\.num_samples"):
        combine_runs([a, {**b, "num_samples": 3}], skipped=[])
    judged = {**a, "judge": "openai", "judge_model": "m"}
    assert combine_runs([judged, {**b, "judge": "openai", "judge_model": "m"}], skipped=[])["judge_model"] == "m"
    with pytest.raises(
        LabtaxError, match=r"disagree on run\.judge_model \(big-judge, m\); .* same settings, teacher, judge"
    ):
        combine_runs([judged, {**b, "judge": "openai", "judge_model": "big-judge"}], skipped=[])
    with pytest.raises(LabtaxError, match=r"disagree on run\.judge \(embedded, openai\)"):
        combine_runs([judged, {**b, "judge": "embedded", "judge_model": "m"}], skipped=[])


def test_leaf_paths_from_manifests_must_stay_inside():
    assert safe_leaf_path("knowledge/a/b/qna.yaml")
    for bad in ("../x/qna.yaml", "/etc/qna.yaml", "a/../../qna.yaml", "a/b.yaml", "qna.yaml", "a/.hidden/qna.yaml"):
        assert not safe_leaf_path(bad), bad


# --- generate --shard and merge, end to end -------------------------------------------------------------------


def test_one_two_and_seven_shards_merge_to_the_single_runs_bytes(tmp_path):
    root = taxonomy(tmp_path / "tax")
    with FakeOpenAI(responder=mixed_teacher) as fake:
        generate(root, fake, tmp_path / "single")
        single_calls = fake.calls()
        for count in (1, 2, 7):
            before = fake.calls()
            folders = []
            for index in range(1, count + 1):
                folder = tmp_path / f"n{count}" / f"shard-{index}"
                generate(root, fake, folder, "--shard", f"{index}/{count}")
                folders.append(folder)
            assert fake.calls() - before == single_calls  # every call made once, by exactly one shard
            merged = tmp_path / f"merged-{count}"
            status, out, err = invoke("merge", str(merged), *map(str, folders))
            assert status == 0, out + err
            assert f"merged {count} shard{'' if count == 1 else 's'}" in out and "8 leaves" in out
            assert_same_output(tmp_path / "single", merged)
            assert cache_keys(merged) == cache_keys(tmp_path / "single")  # the union of the shards' caches
    assert json.loads((tmp_path / "single" / "review" / "rejected.jsonl").read_text().splitlines()[0])["reason"]
    manifest = json.loads((tmp_path / "n7" / "shard-3" / "labtax-shard.json").read_text())
    assert manifest["status"] == "complete" and manifest["shard"] == {"index": 3, "count": 7}
    assert all(len(entry["content_hash"]) == 64 and entry["samples_sha256"] for entry in manifest["leaves"])
    assert manifest["config"]["settings"]["num_samples"] == 2 and manifest["config"]["model"] == "fake-teacher"
    empty = [
        json.loads((tmp_path / "n7" / f"shard-{i}" / "labtax-shard.json").read_text())["leaves"] for i in range(1, 8)
    ]
    assert [] in empty  # 8 leaves over 7 shards: an empty shard is complete too


def test_dry_run_shows_the_split_and_calls_nothing(tmp_path):
    root = taxonomy(tmp_path / "tax")
    with FakeOpenAI() as fake:
        proc = run_labtax("generate", "--dry-run", "-n", "2", "--shard", "2/3", cwd=root, env=env(fake))
        assert fake.calls() == 0
    assert proc.returncode == 0, proc.stderr
    paths = sorted(p.relative_to(root).as_posix() for p in root.rglob("qna.yaml"))
    split = shards.Shard(2, 3).split(paths)
    sizes = ", ".join(f"{i}: {len(split[i])}" for i in (1, 2, 3))
    assert f"shards of 8 leaves by sha256 of the leaf path: {sizes}; this is shard 2/3" in proc.stdout
    assert f"plan: {len(split[2])} {'leaf' if len(split[2]) == 1 else 'leaves'}" in proc.stdout
    for path in paths:
        assert (f"  {path}:" in proc.stdout) is (path in split[2])
    assert not (root / "generated").exists()


def test_missing_and_unfinished_shards_give_the_retry_plan_and_write_nothing(tmp_path):
    root = taxonomy(tmp_path / "tax")
    with FakeOpenAI(responder=mixed_teacher) as fake:
        generate(root, fake, tmp_path / "single")
        for index in (1, 2):
            generate(root, fake, tmp_path / "shards" / f"shard-{index}", "--shard", f"{index}/4")
        # shard 2 "was killed": its manifest still says started; shard 3 never ran; a stray folder has no manifest.
        manifest = tmp_path / "shards" / "shard-2" / "labtax-shard.json"
        manifest.write_text(manifest.read_text().replace('"status": "complete"', '"status": "started"'))
        (tmp_path / "stray").mkdir()
        folders = [tmp_path / "shards" / "shard-1", tmp_path / "shards" / "shard-2", tmp_path / "stray"]
        status, out, message = invoke("merge", str(tmp_path / "out"), *map(str, folders))
        assert status == 1, out + message
        assert not (tmp_path / "out").exists()
        assert f"{tmp_path / 'stray'}: no labtax-shard.json" in message
        assert "shard 2/4 did not finish" in message and "shard 3/4 is missing" in message
        assert "shard 4/4 is missing" in message
        plan = [line.strip() for line in message.splitlines() if line.strip().startswith("labtax generate")]
        assert plan == [  # the selection and settings as given (here --root), the shard and its folder
            f"labtax generate --root {root} -n 2 --max-attempts 4 --keep-unvetted --shard {i}/4 --output {tmp_path / 'shards' / f'shard-{i}'}"
            for i in (2, 3, 4)
        ]
        for command in plan:  # the plan, run as written, completes the set
            proc = run_labtax(*shlex.split(command)[1:], "--no-progress", cwd=root, env=env(fake))
            assert proc.returncode == 0, proc.stdout + proc.stderr
        folders = [tmp_path / "shards" / f"shard-{i}" for i in (1, 2, 3, 4)]
        proc = run_labtax("merge", str(tmp_path / "out"), *map(str, folders), cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_same_output(tmp_path / "single", tmp_path / "out", resumed=True)  # shard 2 ran twice


def test_shards_of_other_settings_or_a_damaged_shard_are_not_merged(tmp_path):
    root = taxonomy(tmp_path / "tax", copies=1)
    with FakeOpenAI() as fake:
        generate(root, fake, tmp_path / "a", "--shard", "1/2")
        status, _, _ = invoke(
            "generate", "--root", str(root), "-n", "1", "--shard", "2/2", "--output", str(tmp_path / "b"), env=env(fake)
        )
        assert status == 0
        status, _, err = invoke("merge", str(tmp_path / "out"), str(tmp_path / "a"), str(tmp_path / "b"))
        assert status == 2 and "different settings" in err and not (tmp_path / "out").exists()

        # The same settings, but shard 2 is vetted by a separate judge (asked at the teacher's endpoint).
        generate(root, fake, tmp_path / "judged", "--shard", "2/2", "--judge-model", "fake-judge")
        judged = json.loads((tmp_path / "judged" / "labtax-shard.json").read_text())
        plain = json.loads((tmp_path / "a" / "labtax-shard.json").read_text())
        assert (judged["config"]["judge"], judged["config"]["judge_model"]) == ("openai", "fake-judge")
        assert (plain["config"]["judge"], plain["config"]["judge_model"]) == ("openai", "fake-teacher")
        assert (
            "--judge-model fake-judge --keep-unvetted --shard 2/2" in judged["retry"]
            and "--judge-model" not in plain["retry"]
        )
        status, _, err = invoke("merge", str(tmp_path / "out"), str(tmp_path / "a"), str(tmp_path / "judged"))
        assert status == 2 and "different settings, teacher, judge" in err and not (tmp_path / "out").exists()

        generate(root, fake, tmp_path / "b2", "--shard", "2/2")
        samples = next((tmp_path / "b2").rglob("samples.jsonl"))
        samples.write_text(samples.read_text()[:-10])  # a truncated upload
        status, _, err = invoke("merge", str(tmp_path / "out"), str(tmp_path / "a"), str(tmp_path / "b2"))
        assert status == 1 and "partial upload" in err and "--shard 2/2" in err

        status, _, err = invoke("merge", str(tmp_path / "a" / "x"), str(tmp_path / "a"))
        assert status == 2 and "overlap" in err

        status, _, err = invoke(
            "generate", "--root", str(root), "--shard", "2/2", "--output", str(tmp_path / "a"), env=env(fake)
        )
        assert status == 2 and "holds the output of shard 1/2" in err


def test_a_manifest_cannot_write_outside_the_merge_folder(tmp_path):
    root = taxonomy(tmp_path / "tax", copies=0)
    with FakeOpenAI() as fake:
        generate(root, fake, tmp_path / "s", "--shard", "1/1")
    path = tmp_path / "s" / "labtax-shard.json"
    manifest = json.loads(path.read_text())
    manifest["leaves"][0]["leaf"] = "../../escaped/qna.yaml"
    path.write_text(json.dumps(manifest))
    status, _, err = invoke("merge", str(tmp_path / "out" / "merged"), str(tmp_path / "s"))
    assert status == 1 and "not a taxonomy leaf path" in err
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "out").exists()


# --- the Ray executor's unit of work, without Ray --------------------------------------------------------------


def test_leaves_run_one_by_one_through_staging_give_the_local_runs_bytes(tmp_path):
    """What each Ray actor does (staged.run_leaf into a shared output, then one rebuild), in one process."""
    from labtax.generate import artifacts
    from labtax.generate.run import BUCKETS, Settings
    from labtax.scale.staged import STAGING, run_leaf
    from labtax.teacher.openai_backend import OpenAITeacher

    from .test_generate import leaves_of

    root = taxonomy(tmp_path / "tax", copies=1)
    with FakeOpenAI(responder=mixed_teacher) as fake:
        generate(root, fake, tmp_path / "single")
        single_calls = fake.calls()

        async def go():
            teacher = OpenAITeacher(fake.base_url, "k", "fake-teacher", concurrency=8)
            try:
                return await asyncio.gather(
                    *(
                        run_leaf(leaf, teacher, tmp_path / "staged", Settings(num_samples=2, keep_unvetted=True))
                        for leaf in leaves_of(root)
                    )
                )
            finally:
                await teacher.aclose()

        results = asyncio.run(go())
        assert fake.calls() == 2 * single_calls
    run = combine_runs([r["run"] for r in results], skipped=[])
    artifacts.write_run(tmp_path / "staged", BUCKETS, run)
    assert_same_output(tmp_path / "single", tmp_path / "staged")
    assert cache_keys(tmp_path / "staged") == cache_keys(tmp_path / "single")
    assert list((tmp_path / "staged" / STAGING).iterdir()) == []  # every staging folder published and removed


# --- the throttle ------------------------------------------------------------------------------------------------


def test_aimd_halves_once_per_round_and_grows_back():
    async def go():
        aimd = Aimd(8)
        granted = [await aimd.acquire() for _ in range(8)]
        waiter = asyncio.create_task(aimd.acquire())
        await asyncio.sleep(0.01)
        assert not waiter.done() and aimd.in_flight == 8  # the ninth waits
        await aimd.release(granted[0], "congested")
        await aimd.release(granted[1], "congested")  # same round: the same congestion, no second cut
        assert aimd.limit == 4 and aimd.cuts == 1 and aimd.congested == 2
        for g in granted[2:6]:
            await aimd.release(g, "error")  # a 500 neither grows nor cuts
        assert aimd.limit == 4
        assert await waiter == 1 and aimd.in_flight == 3  # granted in the new round once under the limit
        for g in granted[6:]:
            await aimd.release(g, "ok")
        await aimd.release(1, "ok")
        assert 4 < aimd.limit < 5
        for _ in range(100):
            await aimd.release(await aimd.acquire(), "ok")
        assert aimd.limit == 8 and aimd.stats()["peak_in_flight"] == 8

    asyncio.run(go())


def test_aimd_wakes_only_as_many_waiters_as_there_are_permits_and_loses_none():
    """300 calls through 4 permits, a third of them cancelled while waiting: every other call gets its permit
    (no wake-up is lost with a cancelled waiter), never more than 4 at once, and each release wakes about one
    waiter, not all of them."""

    async def go():
        aimd = Aimd(4)
        wakes = 0
        predicate_checks = aimd.changed.wait_for

        async def counted_wait_for(predicate):
            def checked():
                nonlocal wakes
                wakes += 1
                return predicate()

            return await predicate_checks(checked)

        aimd.changed.wait_for = counted_wait_for  # type: ignore[method-assign]

        async def call():
            granted = await aimd.acquire()
            await asyncio.sleep(0.001)
            await aimd.release(granted, "ok")

        tasks = [asyncio.create_task(call()) for _ in range(300)]
        await asyncio.sleep(0.005)
        for task in tasks[100:200]:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        finished = [r for r in results if not isinstance(r, BaseException)]
        return aimd, finished, wakes

    aimd, finished, wakes = asyncio.run(go())
    assert len(finished) >= 200 and aimd.in_flight == 0 and aimd.stats()["peak_in_flight"] == 4
    assert wakes < 5 * 300  # notify_all checks every waiter at every release: over 5,000 here


class LocalLimiter:
    """The shared Aimd as one worker sees it (what ActorPermits is over Ray), counting round trips."""

    def __init__(self, aimd: Aimd, holder: str):
        self.aimd, self.holder, self.trips = aimd, holder, 0

    async def acquire(self) -> int:
        self.trips += 1
        return await self.aimd.acquire(self.holder)

    async def release(self, granted_round: int, outcome: str, earlier_ok: int = 0) -> None:
        self.trips += 1
        await self.aimd.release(granted_round, outcome, self.holder, earlier_ok)


async def leased_calls(permits: LeasedPermits, count: int, outcome=lambda i: "ok", rounds: list | None = None):
    async def call(i):
        lease = await permits.acquire()
        if rounds is not None:
            rounds.append((i, lease.round, lease.uses))
        await asyncio.sleep(0.001)
        await permits.release(lease, outcome(i))

    await asyncio.gather(*(call(i) for i in range(count)))


def test_leased_permits_hold_the_limit_across_workers_with_a_fraction_of_the_round_trips():
    async def go():
        aimd = Aimd(4)
        remotes = [LocalLimiter(aimd, f"worker-{k}") for k in (1, 2)]
        workers = [LeasedPermits(remote, reuses=4) for remote in remotes]
        await asyncio.gather(*(leased_calls(w, 150) for w in workers))
        return aimd, remotes

    aimd, remotes = asyncio.run(go())
    stats = aimd.stats()
    assert stats["requests"] == 300 and stats["peak_in_flight"] == 4 and aimd.in_flight == 0
    assert not +aimd.held  # every permit came back
    trips = sum(r.trips for r in remotes)
    assert trips <= 2 * 300 / 3  # a permit per request would be 600 round trips
    assert aimd.limit == 4


def test_a_leased_permit_is_not_reused_past_a_cut_and_an_idle_worker_hands_its_permits_back():
    async def go():
        aimd = Aimd(8)
        a, b = (LeasedPermits(LocalLimiter(aimd, name), reuses=3) for name in ("a", "b"))
        await asyncio.gather(leased_calls(a, 40), leased_calls(b, 40))
        before = aimd.round
        seen: list = []
        # worker a meets a 429 on its 5th request: the limit halves once, and a reuses no permit of the old round
        await leased_calls(a, 30, outcome=lambda i: "congested" if i == 4 else "ok", rounds=seen)
        cut = aimd.round
        after_cut = [r for i, r, _ in seen if i > 12]
        # worker b learns the new round when its permits come back (within `reuses` uses each)
        seen_b: list = []
        await leased_calls(b, 40, rounds=seen_b)
        # a is idle now: b alone gets every permit the limit allows
        return aimd, before, cut, after_cut, seen_b, a, b

    aimd, before, cut, after_cut, seen_b, a, b = asyncio.run(go())
    assert cut == before + 1 and aimd.cuts == 1
    assert after_cut and all(r == cut for r in after_cut)
    assert all(uses <= 3 for _, _, uses in seen_b)
    assert [r for _, r, _ in seen_b][-10:] == [cut] * 10
    assert aimd.in_flight == 0 and not +aimd.held and not a.waiting and not b.waiting


def test_leased_permits_pass_on_a_dead_limiter_instead_of_hanging():
    class Gone:
        async def acquire(self) -> int:
            raise RuntimeError("the limiter actor died")

        async def release(self, granted_round, outcome, earlier_ok=0):
            raise AssertionError("nothing was granted")

    async def go():
        permits = LeasedPermits(Gone())
        return await asyncio.wait_for(asyncio.gather(*(permits.acquire() for _ in range(3)), return_exceptions=True), 5)

    errors = asyncio.run(go())
    assert all(isinstance(e, RuntimeError) and "died" in str(e) for e in errors)  # every waiting request, in turn


def test_aimd_takes_back_the_permits_of_a_worker_that_died():
    async def go():
        aimd = Aimd(2)
        await aimd.acquire("worker-1")
        await aimd.acquire("worker-1")
        waiter = asyncio.create_task(aimd.acquire("worker-2"))
        await asyncio.sleep(0.01)
        assert not waiter.done()
        assert await aimd.forget("worker-1") == 2  # its restart frees what the dead process held
        assert await waiter == 0
        await aimd.release(0, "ok", "worker-1")  # a late release from before the death: ignored
        assert aimd.in_flight == 1 and aimd.held["worker-2"] == 1

    asyncio.run(go())


def test_classify_follows_the_openai_clients_retry_rules():
    assert classify(TeacherError("endpoint returned HTTP 429: slow down")) == "congested"
    assert classify(TeacherError("endpoint returned HTTP 503: busy")) == "congested"
    assert classify(TeacherError("endpoint returned HTTP 500: oops")) == "retry"
    assert classify(TeacherError("request timed out after retries")) == "retry"
    assert classify(TeacherError("cannot reach the endpoint http://x: refused")) == "retry"
    assert classify(TeacherError("endpoint returned HTTP 400: bad request")) is None


def test_throttled_teacher_retries_429_and_503_and_cuts_the_limit():
    from labtax.teacher.openai_backend import OpenAITeacher

    async def go(fake):
        aimd = Aimd(4)
        teacher = ThrottledTeacher(
            OpenAITeacher(fake.base_url, "k", "fake-teacher", max_retries=0), aimd, base_delay=0.01
        )
        try:
            completions = await teacher.complete([{"role": "user", "content": "hi"}], seed=1)
            fake.faults = [Reply(status=400)]
            with pytest.raises(TeacherError, match="HTTP 400"):
                await teacher.complete([{"role": "user", "content": "again"}], seed=2)
        finally:
            await teacher.aclose()
        return completions, aimd

    with FakeOpenAI() as fake:
        fake.faults = [Reply(status=429, headers={"Retry-After": "0"}), Reply(status=503)]
        completions, aimd = asyncio.run(go(fake))
        assert fake.calls() == 4  # 429, 503, success; then the 400 is final
    assert completions[0].text.startswith("Answer:")
    stats = aimd.stats()
    assert stats["congested"] == 2 and stats["cuts"] == 2 and stats["in_flight"] == 0 and stats["requests"] == 4


def test_classify_prefers_the_errors_own_status():
    assert classify(TeacherError("slow down", status=429)) == "congested"
    assert classify(TeacherError("busy", status=503)) == "congested"
    assert classify(TeacherError("bad gateway", status=502)) == "retry"
    assert classify(TeacherError("conflict", status=409)) == "retry"
    assert classify(TeacherError("endpoint returned HTTP 500: oops", status=400)) is None


def test_openai_teacher_errors_carry_the_status_and_retry_after():
    import email.utils
    import pickle

    from labtax.teacher.openai_backend import OpenAITeacher

    async def go(fake, count):
        teacher = OpenAITeacher(fake.base_url, "k", "fake-teacher", max_retries=0)
        errors = []
        try:
            for k in range(count):
                with pytest.raises(TeacherError) as caught:
                    await teacher.complete([{"role": "user", "content": f"call {k}"}])
                errors.append(caught.value)
        finally:
            await teacher.aclose()
        return errors

    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    with FakeOpenAI() as fake:
        fake.faults = [
            Reply(status=429, headers={"Retry-After": "7"}),
            Reply(status=503, headers={"retry-after-ms": "1500", "Retry-After": "9"}),  # ms first, as the client
            Reply(status=429, headers={"Retry-After": later}),
            Reply(status=429, headers={"Retry-After": "soon"}),
            Reply(status=500),
        ]
        errors = asyncio.run(go(fake, 5))
        assert fake.calls() == 5  # no retries inside the backend
    assert [e.status for e in errors] == [429, 503, 429, 429, 500]
    assert errors[0].retry_after == 7.0 and errors[1].retry_after == 1.5
    assert 25.0 < errors[2].retry_after <= 30.0  # an HTTP date: seconds from now
    assert errors[3].retry_after is None and errors[4].retry_after is None
    assert "HTTP 429" in str(errors[0])
    copy = pickle.loads(pickle.dumps(errors[0]))  # a Ray worker's error crosses processes
    assert (copy.message, copy.status, copy.retry_after) == (errors[0].message, 429, 7.0)


def test_throttled_teacher_halves_the_limit_and_waits_out_retry_after():

    from labtax.teacher.openai_backend import OpenAITeacher

    async def go(fake):
        aimd = Aimd(4)
        teacher = ThrottledTeacher(
            OpenAITeacher(fake.base_url, "k", "fake-teacher", max_retries=0), aimd, base_delay=0.01
        )
        try:
            start = time.monotonic()
            call = asyncio.create_task(teacher.complete([{"role": "user", "content": "hi"}], seed=1))
            await asyncio.sleep(0.5)
            # Half-way through the wait: the limit is cut already, and the retry not sent (backoff alone: ~10 ms).
            during = (aimd.limit, aimd.cuts, aimd.in_flight, fake.calls())
            completions = await call
            waited = time.monotonic() - start
        finally:
            await teacher.aclose()
        return completions, aimd, during, waited

    with FakeOpenAI() as fake:
        fake.faults = [Reply(status=429, headers={"Retry-After": "1"})]
        completions, aimd, during, waited = asyncio.run(go(fake))
        assert fake.calls() == 2
    assert during == (2.0, 1, 0, 1)
    assert waited >= 1.0
    assert completions[0].text.startswith("Answer:")
    assert aimd.limit == 2.5 and aimd.stats()["congested"] == 1  # halved, then +1/limit for the success


def test_throttled_teacher_caps_a_long_retry_after():
    from labtax.teacher.openai_backend import OpenAITeacher

    async def go(fake):
        teacher = ThrottledTeacher(
            OpenAITeacher(fake.base_url, "k", "fake-teacher", max_retries=0),
            Aimd(2),
            base_delay=0.01,
            retry_after_cap=0.2,
        )
        try:
            return await asyncio.wait_for(teacher.complete([{"role": "user", "content": "hi"}]), timeout=10)
        finally:
            await teacher.aclose()

    with FakeOpenAI() as fake:
        fake.faults = [Reply(status=503, headers={"Retry-After": "3600"})]
        completions = asyncio.run(go(fake))
        assert fake.calls() == 2
    assert completions[0].text.startswith("Answer:")


def test_executor_ray_without_ray_says_how_to_install(tmp_path, monkeypatch):
    import importlib.util

    from labtax.main import cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    root = taxonomy(tmp_path / "tax", copies=0)
    with pytest.raises(LabtaxError, match=r"needs ray: pip install 'labtax\[ray\]'"):
        cli.main(["generate", "--executor", "ray", "--root", str(root)], standalone_mode=False)


def test_a_knowledge_leafs_calls_do_not_grow_with_its_document(tmp_path):
    """Why a leaf is never split into sub-units for shards or Ray: its work is -n samples (at most -n x
    --max-attempts candidates, each the same stages), whatever the size of its document, so a big document
    cannot make one leaf dominate a shard. Here 30 times the document: as many calls."""
    from labtax import documents

    from .test_generate import generate as generate_leaves
    from .test_generate import leaves_of

    seen = {}
    for copies in (1, 30):
        root = make_taxonomy(tmp_path / f"tax-{copies}", ("knowledge",))
        document = root / "documents/photosynthesis/photosynthesis.md"
        text = document.read_text(encoding="utf-8")
        document.write_text("\n\n".join(text.replace("# ", f"# Part {i}: ", 1) for i in range(copies)), "utf-8")
        (leaf,) = leaves_of(root)
        chunks, _ = documents.chunks_for(leaf.root, leaf.data.get("document"), 350)
        with FakeOpenAI() as fake:
            summary = generate_leaves(root, fake, tmp_path / f"out-{copies}", n=3, calibrate=True)
            assert fake.calls() == summary["leaves"][leaf.path]["teacher_calls"]
        entry = summary["leaves"][leaf.path]
        assert entry["accepted"] == 3 and entry["generated"] == 3, entry  # no rejection: the same candidates
        seen[copies] = (len(chunks), entry["teacher_calls"])
    assert seen[30][0] >= 20 * seen[1][0]
    assert seen[30][1] == seen[1][1]


def test_a_symlinked_leaf_folder_in_a_shard_is_not_followed(tmp_path):
    """#24 item 17: merge followed a linked leaf folder and copied what it pointed to into the output."""
    root = taxonomy(tmp_path / "tax", copies=0)
    with FakeOpenAI() as fake:
        generate(root, fake, tmp_path / "s", "--shard", "1/1")
    manifest = json.loads((tmp_path / "s" / "labtax-shard.json").read_text())
    leaf = manifest["leaves"][0]["leaf"]
    folder = next(p.parent for p in (tmp_path / "s").rglob("leaf.json") if leaf.rsplit("/", 1)[0] in str(p.parent))
    elsewhere = tmp_path / "elsewhere"
    folder.rename(elsewhere)
    (elsewhere / "secret.txt").write_text("not the shard's\n")
    folder.symlink_to(elsewhere, target_is_directory=True)
    status, _, err = invoke("merge", str(tmp_path / "out"), str(tmp_path / "s"))
    assert status != 0 and "link" in err and "Traceback" not in err, err
    assert not list(tmp_path.joinpath("out").rglob("secret.txt"))  # rglob of a missing folder is empty


def test_a_manifests_shard_count_is_bounded_like_the_option(tmp_path):
    """#24 item 15: a manifest saying 10^9 shards hung merge (one retry line per missing shard); --shard
    already allows at most MAX_SHARDS, and a manifest may say no more."""
    from labtax.scale.shards import MAX_SHARDS

    root = taxonomy(tmp_path / "tax", copies=0)
    with FakeOpenAI() as fake:
        generate(root, fake, tmp_path / "s", "--shard", "1/1")
    path = tmp_path / "s" / "labtax-shard.json"
    manifest = json.loads(path.read_text())
    manifest["shard"]["count"] = 10**9
    path.write_text(json.dumps(manifest))
    status, _, err = invoke("merge", str(tmp_path / "out"), str(tmp_path / "s"))  # 10^9 retry lines hung it
    assert status != 0 and f"at most {MAX_SHARDS}" in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


# --- merge checks every shard against the selection (#24 item 16) ----------------------------------------------


def one_shard(tmp_path: Path) -> tuple[Path, dict]:
    """A complete shard 1/1 of the four test leaves, and its manifest."""
    root = taxonomy(tmp_path / "tax", copies=0)
    with FakeOpenAI() as fake:
        generate(root, fake, tmp_path / "s", "--shard", "1/1")
    return tmp_path / "s", json.loads((tmp_path / "s" / "labtax-shard.json").read_text())


def test_a_shard_that_lost_a_leaf_is_not_merged(tmp_path):
    """#24 item 16: a shard whose manifest and folder lost one of its leaves merged with exit 0 (the leaf was
    silently missing from the output); every leaf of the selection that the shard owns must be in it."""
    folder, manifest = one_shard(tmp_path)
    lost = manifest["leaves"].pop(1)["leaf"]
    shutil.rmtree(folder / lost.rsplit("/", 1)[0])
    (folder / "labtax-shard.json").write_text(json.dumps(manifest))
    status, _, err = invoke("merge", str(tmp_path / "out"), str(folder))
    assert status == 2, err
    assert lost in err and "shard 1/1" in err and "Traceback" not in err, err
    assert (
        f"labtax generate --root {tmp_path / 'tax'} -n 2 --max-attempts 4 --keep-unvetted --shard 1/1 --output {folder}"
        in err
    )
    assert not (tmp_path / "out").exists()

    # A leaf the selection does not hold (or holds with other contents) is refused alike.
    manifest = json.loads(json.dumps(manifest))
    manifest["leaves"].append({**manifest["leaves"][0], "leaf": lost})
    manifest["leaves"][-1]["content_hash"] = "0" * 64
    shutil.copytree(folder / manifest["leaves"][0]["leaf"].rsplit("/", 1)[0], folder / lost.rsplit("/", 1)[0])
    (folder / "labtax-shard.json").write_text(json.dumps(manifest))
    status, _, err = invoke("merge", str(tmp_path / "out"), str(folder))
    assert status == 2 and lost in err and "shard 1/1" in err, err
    assert not (tmp_path / "out").exists()

    # So is a shard whose skipped leaves are not the selection's (the merged summary lists them).
    manifest["leaves"][-1]["content_hash"] = next(c for p, c in manifest["selection"]["leaves"] if p == lost)
    manifest["skipped"].append({"leaf": "knowledge/other/qna.yaml", "errors": ["1:1 LT001 x"]})
    (folder / "labtax-shard.json").write_text(json.dumps(manifest))
    status, _, err = invoke("merge", str(tmp_path / "out"), str(folder))
    assert status == 2 and "skipped" in err and "knowledge/other/qna.yaml" in err, err
    assert not (tmp_path / "out").exists()


def test_a_leaf_entry_without_samples_or_their_hash_is_not_merged(tmp_path):
    """#24 item 16: an entry without samples_sha256 whose samples.jsonl is gone passed (None == None)."""
    folder, manifest = one_shard(tmp_path)
    entry = manifest["leaves"][0]
    del entry["samples_sha256"]
    (folder / entry["leaf"].rsplit("/", 1)[0] / "samples.jsonl").unlink()
    (folder / "labtax-shard.json").write_text(json.dumps(manifest))
    status, _, err = invoke("merge", str(tmp_path / "out"), str(folder))
    assert status == 1 and entry["leaf"] in err and "samples_sha256" in err and "--shard 1/1" in err, err
    assert not (tmp_path / "out").exists()


def test_a_manifest_whose_config_or_selection_does_not_hash_to_its_record_is_not_merged(tmp_path):
    """#24 item 16: config_hash was compared between shards but never recomputed: an edited config merged."""
    folder, manifest = one_shard(tmp_path)
    path = folder / "labtax-shard.json"
    edited = json.loads(json.dumps(manifest))
    edited["config"]["settings"]["num_samples"] = 50
    path.write_text(json.dumps(edited))
    status, _, err = invoke("merge", str(tmp_path / "out"), str(folder))
    assert status == 2 and "config_hash" in err and "shard 1/1" in err and "--shard 1/1" in err, err
    assert not (tmp_path / "out").exists()

    edited = json.loads(json.dumps(manifest))
    edited["selection"]["leaves"].pop()
    path.write_text(json.dumps(edited))
    status, _, err = invoke("merge", str(tmp_path / "out"), str(folder))
    assert status == 2 and "selection_hash" in err and "shard 1/1" in err, err
    assert not (tmp_path / "out").exists()

    path.write_text(json.dumps(manifest))
    status, out, err = invoke("merge", str(tmp_path / "out"), str(folder))
    assert status == 0, out + err


def test_the_retry_command_keeps_every_setting_the_shards_must_share():
    """A shard's retry command, run as printed, must not be refused for "other settings": calibration off,
    --keep-unvetted and the judge's tokenizer are settings too (the shard records them)."""
    from labtax.scale.manifest import generate_args

    params = {"num_samples": 2, "max_attempts": 3, "calibrate": False, "keep_unvetted": True}
    params |= {"judge_model": "j", "judge_tokenizer": "/models/j"}
    args = generate_args(params)
    assert args == [
        *("-n", "2", "--max-attempts", "3", "--judge-model", "j", "--judge-tokenizer", "/models/j"),
        *("--no-calibrate", "--keep-unvetted"),
    ]
    assert generate_args({"num_samples": 2, "max_attempts": 3, "calibrate": True}) == ["-n", "2", "--max-attempts", "3"]
