"""Judge verdicts as probabilities and a separate judge, against real HTTP servers on 127.0.0.1.

Fixed log-probabilities from a fake OpenAI server drive the gate's accept/reject decisions and the threshold
each leaf's calibration chooses; a server that refuses logprobs falls back to the sampled digit; a separate
judge endpoint receives exactly the judge stages; the call cache keeps each model's replies apart.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import math
import sys
import threading
from http.server import ThreadingHTTPServer

import pytest

from labtax.config import load_config
from labtax.generate.cache import CallCache
from labtax.generate.calibrate import CALIBRATION_INDEX
from labtax.generate.gate.scores import accept_probability, choose_threshold, roc_auc
from labtax.generate.run import Settings, run_generation
from labtax.teacher.base import Completion, TeacherInfo
from labtax.teacher.openai_backend import OpenAITeacher
from labtax.teacher.resolve import describe_judge

from .conftest import run_labtax
from .fake_openai import FakeOpenAI, Reply, good_teacher, judge_reply, stage_of
from .test_gate import LEAF, seed_answers
from .test_generate import leaves_of, make_taxonomy, read_jsonl
from .test_generate_cli import _env

JUDGE_STAGES = {"judge_question", "judge_pair", "judge_knowledge"}


def run(root, teacher_fake, out, *, judge_fake=None, judge_model="fake-judge", n=2, calibrate=True, attempts=4):
    async def go():
        teacher = OpenAITeacher(teacher_fake.base_url, "k", "fake-teacher")
        judge = OpenAITeacher(judge_fake.base_url, "k", judge_model) if judge_fake else None
        try:
            settings = Settings(num_samples=n, max_attempts=attempts, calibrate=calibrate)
            return await run_generation(leaves_of(root), teacher, out, settings, judge=judge)
        finally:
            await teacher.aclose()
            if judge:
                await judge.aclose()

    return asyncio.run(go())


def stages(fake) -> set[str]:
    return {stage_of(r) for r in fake.requests}


# -- the arithmetic ------------------------------------------------------------------------------------------


def test_the_probability_is_the_mass_on_accepting_digits_among_the_digits():
    logs = [{"3": math.log(0.6), "2": math.log(0.2), "1": math.log(0.1), "Sure": math.log(0.1)}]
    assert accept_probability(logs, 2) == pytest.approx(0.8 / 0.9, abs=1e-6)
    assert accept_probability(logs, 3) == pytest.approx(0.6 / 0.9, abs=1e-6)
    # The first token that offers a digit; tokens that strip to the same digit add up.
    spaced = [{"\n": -0.01}, {" 3": math.log(0.5), "3": math.log(0.3), "1": math.log(0.2)}]
    assert accept_probability(spaced, 2) == pytest.approx(0.8)
    assert accept_probability(None, 2) is None and accept_probability([], 2) is None
    assert accept_probability([{"yes": -0.1, "15": -2.0}], 2) is None  # no score digit: the sampled text decides


def test_the_threshold_maximises_balanced_accuracy_with_ties_to_one_half():
    assert choose_threshold([0.9, 0.7], [0.6, 0.2]) == pytest.approx(0.65)
    assert choose_threshold([0.9], [0.1]) == 0.5  # 0.5 separates as well as the midpoint
    assert choose_threshold([0.3], [0.7]) == 0.5  # an inverted judge: nothing beats 0.5
    assert choose_threshold([0.8], [False, 0.4]) == 0.5  # decided verdicts (the checks) count, but do not move it
    assert choose_threshold([True], [0.4]) is None and choose_threshold([0.8], []) is None
    assert roc_auc([0.9, 0.7], [0.6, 0.7]) == pytest.approx(0.875) and roc_auc([], [0.1]) is None


# -- fixed log-probabilities decide, and calibrate the threshold ------------------------------------------


def test_fixed_logprobs_decide_and_the_leaf_calibrates_its_threshold(tmp_path):
    """Every judge samples "3", so digits accept everything; the probabilities tell good from bad."""
    answers = seed_answers()

    def judge_by_probability(request: dict) -> Reply:
        stage = stage_of(request)
        if stage == "judge_question":
            return judge_reply({"3": 0.9, "1": 0.1})
        if stage != "judge_pair":
            return good_teacher(request)
        user = request["messages"][-1]["content"]
        if request["seed"] > CALIBRATION_INDEX:  # a held-out seed with its own answer, or a corrupted one
            question = next(q for q in answers if q in user)
            return judge_reply({"3": 0.7, "1": 0.3} if answers[question] in user else {"3": 0.55, "1": 0.45})
        return judge_reply({"3": 0.7, "1": 0.3} if request["seed"] % 2 == 0 else {"3": 0.6, "1": 0.4})

    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    with FakeOpenAI(judge_by_probability) as fake:
        summary = run(root, fake, tmp_path / "out", n=3)
        requests = list(fake.requests)
    (leaf,) = summary["leaves"].values()
    gate = leaf["gate"]
    assert gate["threshold"] == pytest.approx(0.625) and gate["separates"] is True and gate["roc_auc"] == 1.0
    assert gate["probabilities"] > 0 and gate["bad_rejected"] == gate["bad_total"]
    assert leaf["accepted"] == 3 and leaf["note"] is None
    samples = read_jsonl(tmp_path / "out" / "compositional.jsonl")
    assert sorted(s["provenance"]["sample_index"] for s in samples) == [0, 2, 4]  # odd ones scored 0.6 < 0.625
    for sample in samples:
        judge = sample["judge"]
        assert {c["name"]: c["probability"] for c in judge["criteria"]} == {"question": 0.9, "pair": 0.7}
        assert judge["probability"] == 0.7 and judge["vetted"] == "yes"
    rejected = read_jsonl(tmp_path / "out" / LEAF.rsplit("/", 1)[0] / "rejected.jsonl")
    assert {r["sample_index"] for r in rejected} == {1, 3}
    assert all(r["reason"] == "judge_score" and "threshold 0.625" in r["detail"] for r in rejected)
    # Only judge stages asked for log-probabilities (5 candidates); generation stages never did.
    for request in requests:
        asked = (request.get("logprobs"), request.get("top_logprobs"))
        assert asked == ((True, 5) if stage_of(request) in JUDGE_STAGES else (None, None)), request


def test_a_server_that_refuses_logprobs_falls_back_to_the_sampled_digit(tmp_path):
    answers = seed_answers()

    def digits(request: dict) -> Reply:
        if stage_of(request) != "judge_pair":
            return good_teacher(request)
        user = request["messages"][-1]["content"]
        question = next((q for q in answers if q in user), None)
        good = "A clear reply about" in user if question is None else answers[question] in user
        return Reply("3" if good else "1")

    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    with FakeOpenAI(digits, refuse_logprobs=True) as fake:
        summary = run(root, fake, tmp_path / "out")
        with_logprobs = [r for r in fake.requests if r.get("logprobs")]
    assert len(with_logprobs) == 1  # refused once, asked again without, never asked again
    (leaf,) = summary["leaves"].values()
    assert leaf["accepted"] == 2 and "teacher_error" not in leaf["rejected"]
    assert leaf["gate"]["threshold"] is None and leaf["gate"]["probabilities"] == 0
    assert leaf["gate"]["separates"] is True  # the digits did it
    for sample in read_jsonl(tmp_path / "out" / "compositional.jsonl"):
        assert sample["judge"]["probability"] is None
        assert all(c["probability"] is None and c["score"] == 3 for c in sample["judge"]["criteria"])


# -- a separate judge ----------------------------------------------------------------------------------------


def always_sure(request: dict) -> Reply:
    if stage_of(request) in JUDGE_STAGES:
        return judge_reply({"3": 0.9, "1": 0.1})
    raise AssertionError(f"the judge was asked a generation stage: {stage_of(request)}")


def test_a_separate_judge_gets_exactly_the_judge_stages_and_each_model_its_own_cache(tmp_path):
    root = make_taxonomy(tmp_path / "tax")  # every pipeline: freeform, grounded, knowledge
    out = tmp_path / "out"
    with FakeOpenAI(good_teacher) as teacher, FakeOpenAI(always_sure, model="fake-judge") as judge:
        summary = run(root, teacher, out, judge_fake=judge)
        assert stages(teacher) and not stages(teacher) & JUDGE_STAGES
        assert stages(judge) == JUDGE_STAGES
        assert {r["model"] for r in judge.requests} == {"fake-judge"}
        calibration = [r for r in judge.requests if r["seed"] > CALIBRATION_INDEX]
        assert calibration and not [r for r in teacher.requests if r["seed"] > CALIBRATION_INDEX]
        judged_once, taught_once = judge.calls(), teacher.calls()

        # Another judge model on the same output: the teacher's calls replay from the cache, the judge's do not.
        with FakeOpenAI(always_sure, model="fake-judge-2") as other:
            run(root, teacher, out, judge_fake=other, judge_model="fake-judge-2")
            assert teacher.calls() == taught_once and other.calls() == judged_once
        # No separate judge: the teacher judges, and is asked the judge stages afresh (never the judge's replies).
        run(root, teacher, out)
        assert {stage_of(r) for r in teacher.requests[taught_once:]} == JUDGE_STAGES
    assert summary["run"]["model"] == "fake-teacher" and summary["run"]["judge_model"] == "fake-judge"
    assert summary["run"]["judge"] == "openai"
    samples = [s for b in ("knowledge", "foundational", "compositional") for s in read_jsonl(out / f"{b}.jsonl")]
    assert samples and all(s["provenance"]["judge_model"] == "fake-teacher" for s in samples)  # the last run's
    assert all(s["judge"]["probability"] is None for s in samples)  # good_teacher's judges give no logprobs


def test_provenance_names_the_separate_judge(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    with FakeOpenAI(good_teacher) as teacher, FakeOpenAI(always_sure, model="fake-judge") as judge:
        summary = run(root, teacher, tmp_path / "out", judge_fake=judge, calibrate=False)
    (samples,) = (tmp_path / "out").rglob("samples.jsonl")  # the leaf's own file: uncalibrated, not training data
    (sample, *_) = read_jsonl(samples)
    provenance = sample["provenance"]
    assert (provenance["teacher"], provenance["teacher_model"]) == ("openai", "fake-teacher")
    assert (provenance["judge"], provenance["judge_model"]) == ("openai", "fake-judge")
    assert sample["judge"]["probability"] == 0.9
    assert (summary["run"]["teacher"], summary["run"]["judge_model"]) == ("openai", "fake-judge")


def test_the_cli_sends_the_judge_stages_to_the_judge_endpoint(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    with FakeOpenAI(good_teacher) as teacher, FakeOpenAI(always_sure, model="fake-judge") as judge:
        args = ["generate", "-n", "2", "--no-progress", "--output", str(tmp_path / "out")]
        env = {**_env(teacher), "LABTAX_JUDGE_API_KEY": "sk-judge"}
        proc = run_labtax(*args, "--judge-model", "fake-judge", "--judge-base-url", judge.base_url, cwd=root, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "judge: openai fake-judge (--judge-base-url given)" in proc.stdout
        assert stages(judge) == {"judge_question", "judge_pair"} and not stages(teacher) & JUDGE_STAGES
        # The same from [tool.labtax.judge]; naming the teacher itself as the judge changes nothing (all cached).
        (root / ".labtax.toml").write_text(f'[judge]\nmodel = "fake-judge"\nbase-url = "{judge.base_url}"\n')
        calls = judge.calls(), teacher.calls()
        proc = run_labtax(*args, cwd=root, env=env)
        assert proc.returncode == 0 and "judge: openai fake-judge (base-url set in" in proc.stdout
        assert (judge.calls(), teacher.calls()) == calls
        (root / ".labtax.toml").write_text(f'[judge]\nmodel = "fake-teacher"\nbase-url = "{teacher.base_url}"\n')
        proc = run_labtax(*args, cwd=root, env=env)
        assert proc.returncode == 0 and "judge:" not in proc.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["run"]["judge_model"] == "fake-teacher"


def test_which_judge_serves():
    endpoint = TeacherInfo("openai", "small", "--base-url given", {"base_url": "http://t/v1"})
    embedded = TeacherInfo("embedded", "SmolLM2-135M-Instruct", "default", {})

    class Config:
        judge: dict = {}
        teacher: dict = {}
        source = "pyproject.toml"

    config = Config()
    assert describe_judge(config, endpoint) is None  # nothing named: the teacher judges
    big = describe_judge(config, endpoint, model="big")
    assert big is not None and (big.model, big.details["base_url"]) == ("big", "http://t/v1")  # the teacher's endpoint
    assert describe_judge(config, endpoint, base_url="http://t/v1", model="small") is None  # the teacher itself
    assert describe_judge(config, embedded, model="embedded") is None
    assert describe_judge(config, embedded, model="big").details["problems"]  # no endpoint to ask
    assert describe_judge(config, endpoint, base_url="http://j/v1").details["problems"]  # no model
    config.judge = {"model": "big", "base-url": "http://j/v1"}
    from_config = describe_judge(config, endpoint)
    assert from_config is not None and from_config.details["base_url"] == "http://j/v1"
    assert from_config.reason == "base-url set in [tool.labtax.judge] in pyproject.toml"


def test_unknown_judge_settings_are_refused(tmp_path):
    from labtax.errors import LabtaxError

    (tmp_path / ".labtax.toml").write_text('[judge]\nmodel = "big"\nbase_url = "http://j/v1"\n')
    with pytest.raises(LabtaxError, match=r"takes only base-url, model; found \['base_url'\]"):
        load_config(tmp_path)


# -- the cache -----------------------------------------------------------------------------------------------


def test_the_cache_keeps_top_logprobs_and_still_reads_entries_without(tmp_path):
    cache = CallCache(tmp_path)
    with_logprobs = [{"text": "3", "finish_reason": "stop", "prompt_tokens": 4, "completion_tokens": 1}]
    with_logprobs[0]["top_logprobs"] = [{"3": -0.1, "1": -2.4}]
    cache.put("a" * 64, with_logprobs)
    older = {"text": "2", "finish_reason": "stop", "prompt_tokens": 4, "completion_tokens": 1}
    cache.put("b" * 64, [older])
    cache.put("c" * 64, [{**older, "top_logprobs": [{"3": "high"}]}])  # damaged: a miss
    fresh = CallCache(tmp_path)
    assert fresh.get("a" * 64) == with_logprobs
    assert fresh.get("b" * 64) == [older] and Completion(**older).top_logprobs is None
    assert fresh.get("c" * 64) is None


# -- labtax serve --------------------------------------------------------------------------------------------


class ListingTeacher:
    """Stands in for the EmbeddedTeacher behind `labtax serve`: fixed text, and top candidates when asked."""

    model = "SmolLM2-135M-Instruct"

    def __init__(self):
        self.asked: list[int | None] = []

    def submit(self, messages, *, n=1, temperature=0.7, max_tokens=256, seed=None, stop=None, on_text=None, **kw):
        self.asked.append(kw.get("top_logprobs"))
        steps = [{"3": -0.2, "1": -1.8, "2": -3.0}] if kw.get("top_logprobs") else None
        future: concurrent.futures.Future = concurrent.futures.Future()
        future.set_result([Completion("3", "stop", 5, 1, top_logprobs=steps)])
        return future


class OldTeacher(ListingTeacher):
    def submit(
        self, messages, *, n=1, temperature=0.7, max_tokens=256, seed=None, stop=None, on_text=None, cancel=None
    ):
        return super().submit(messages, n=n)


@pytest.fixture(params=[ListingTeacher, OldTeacher])
def served(request):
    from labtax.teacher.server import make_handler

    teacher = request.param()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(teacher, set()))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    yield teacher, f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_serve_answers_logprobs_in_openais_format(served):
    import openai

    teacher, base_url = served
    client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)
    chat = [{"role": "user", "content": "Score it"}]
    reply = client.chat.completions.create(model=teacher.model, messages=chat, logprobs=True, top_logprobs=2)
    if isinstance(teacher, OldTeacher):  # a teacher that cannot list candidates: 200, logprobs null
        assert reply.choices[0].logprobs is None and reply.choices[0].message.content == "3"
        return
    (step,) = reply.choices[0].logprobs.content
    assert (step.token, step.logprob) == ("3", -0.2)
    assert [(t.token, t.logprob) for t in step.top_logprobs] == [("3", -0.2), ("1", -1.8)]
    plain = client.chat.completions.create(model=teacher.model, messages=chat)
    assert plain.choices[0].logprobs is None and teacher.asked == [2, None]
    for extra, param in (({"top_logprobs": 2}, "top_logprobs"), ({"logprobs": True, "stream": True}, "logprobs")):
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model=teacher.model, messages=chat, **extra)
        assert caught.value.response.json()["error"]["param"] == param

    async def through_the_backend():
        backend = OpenAITeacher(base_url, None, teacher.model)
        try:
            return await backend.complete(chat, temperature=0.0, max_tokens=3, top_logprobs=5)
        finally:
            await backend.aclose()

    (completion,) = asyncio.run(through_the_backend())
    assert completion.top_logprobs == [{"3": -0.2, "1": -1.8, "2": -3.0}]
    assert accept_probability(completion.top_logprobs, 2) == pytest.approx(
        (math.exp(-0.2) + math.exp(-3.0)) / (math.exp(-0.2) + math.exp(-1.8) + math.exp(-3.0)), abs=1e-6
    )


def test_the_judge_benchmark_ranks_by_probability_where_there_is_one():
    import importlib.util

    from .conftest import REPO

    spec = importlib.util.spec_from_file_location("bench_judge", REPO / "bench" / "judge.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclass looks itself up there
    spec.loader.exec_module(bench)

    def row(leaf, kind, score, probability):
        accepted = probability >= 0.5 if probability is not None else score >= 2
        return {
            "leaf": leaf,
            "kind": kind,
            "good": kind == "good",
            "score": score,
            "probability": probability,
            "accepted": accepted,
        }

    # Every judge sampled "3"; only the probabilities tell the good from the bad.
    rows = [row("a", "good", 3, 0.9), row("a", "refusal", 3, 0.6), row("a", "refusal", 0, None)]
    teacher = TeacherInfo("openai", "small", "", {})
    result = bench.summarize(rows, teacher, TeacherInfo("openai", "big", "", {}))
    assert result["roc_auc_over"] == "probabilities" and result["roc_auc_within_leaf"] == 1.0
    assert result["judge"] == "openai big" and result["teacher"] == "openai small"
    digits = bench.summarize([{**r, "probability": None} for r in rows], teacher)
    assert digits["roc_auc_over"] == "scores" and digits["roc_auc_within_leaf"] == 0.75
