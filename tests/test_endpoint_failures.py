"""An endpoint that fails is said so, never taken for the data's quality (#30), against real HTTP servers on
127.0.0.1: a server that is down before or during a run stops it (exit 2, its host, the fix) and the run
resumes from the cache; a server that cannot give log-probabilities (llama.cpp's HTTP 500) is asked without
them, with a warning; each call has one deadline (--timeout); a failed calibration call leaves the leaf's
calibration incomplete, and the re-run of a finished run makes no call."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import pytest

from labtax.generate.cache import CallCache
from labtax.generate.calibrate import CALIBRATION_INDEX
from labtax.generate.run import Settings, run_generation
from labtax.records.types import note_with_verdict
from labtax.teacher.base import EndpointUnreachable, TeacherError
from labtax.teacher.openai_backend import OpenAITeacher

from .conftest import run_labtax
from .fake_openai import FakeOpenAI, Reply, good_teacher, judge_reply, stage_of
from .test_generate import LEAVES as LEAVES_PATHS
from .test_generate import leaves_of, make_taxonomy
from .test_generate_cli import _env

# llama-cpp-python 0.3.36's server, started with --logits_all False, asked for logprobs: its exact answer
# (llama_cpp/server/errors.py wraps the ValueError of llama_cpp/llama.py as an internal server error).
LLAMA_CPP_NO_LOGPROBS = Reply(
    status=500,
    raw_body=json.dumps(
        {
            "error": {
                "message": "logprobs is not supported for models created with logits_all=False",
                "type": "internal_server_error",
                "param": None,
                "code": None,
            }
        }
    ).encode(),
)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cache_entries(out) -> int:
    return len(list((out / ".cache" / "calls").glob("??/*.json")))


# -- 1. an endpoint that is down --------------------------------------------------------------------------------


def test_an_unreachable_endpoint_raises_naming_its_host_and_never_its_credentials():
    port = closed_port()

    async def go():
        teacher = OpenAITeacher(f"http://user:s3cret@127.0.0.1:{port}/v1?key=k3y", "k", "m", max_retries=1)
        try:
            with pytest.raises(EndpointUnreachable) as caught:
                await teacher.complete([{"role": "user", "content": "hi"}])
        finally:
            await teacher.aclose()
        return str(caught.value)

    message = asyncio.run(go())
    assert f"cannot reach the teacher endpoint 127.0.0.1:{port} (connection refused)" in message
    assert "--base-url" in message and "s3cret" not in message and "k3y" not in message and "user" not in message


def test_a_run_against_a_closed_port_stops_at_once_with_exit_2_and_one_line(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform", "knowledge"))
    port = closed_port()
    env = {"OPENAI_BASE_URL": f"http://me:s3cret@127.0.0.1:{port}/v1", "LABTAX_TEACHER_MODEL": "fake-teacher"}
    started = time.monotonic()
    # --timeout 2: the deadline ends the client's retries (about 7 s by default) and a check finds no server
    proc = run_labtax("generate", "--timeout", "2", "--output", str(tmp_path / "out"), cwd=root, env=env)
    seconds = time.monotonic() - started
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("labtax: error:")]
    assert len(errors) == 1 and f"cannot reach the teacher endpoint 127.0.0.1:{port}" in errors[0], proc.stderr
    assert "re-run the same command" in errors[0] and "s3cret" not in proc.stderr + proc.stdout
    for verdict in ("max-attempts", "separate good from bad", "accepted", "teacher_error"):
        assert verdict not in proc.stdout + proc.stderr
    assert seconds < 20, seconds
    assert not (tmp_path / "out" / "summary.json").exists()


def test_a_server_stopped_mid_run_stops_it_and_a_rerun_resumes_from_the_cache(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform", "knowledge"))
    out = tmp_path / "out"
    with FakeOpenAI(latency=0.02) as fake:

        def stop_after(calls: int) -> None:
            deadline = time.monotonic() + 60
            while fake.calls() < calls and time.monotonic() < deadline:
                time.sleep(0.005)
            fake.server.shutdown()  # no new connection is accepted: every later call is refused
            fake.server.server_close()

        watcher = threading.Thread(target=stop_after, args=(12,), daemon=True)
        watcher.start()
        started = time.monotonic()
        first = run_labtax("generate", "-n", "3", "--timeout", "3", "--output", str(out), cwd=root, env=_env(fake))
        seconds = time.monotonic() - started
        watcher.join(5)
        made = fake.calls()
    assert first.returncode == 2, (first.stdout, first.stderr)
    error = first.stderr.strip().splitlines()[-1]
    assert error.startswith("labtax: error: cannot reach the teacher endpoint 127.0.0.1:"), first.stderr
    assert f"finished calls are cached in {out}/.cache" in error
    assert "accepted" not in first.stdout and "teacher_error" not in first.stdout + first.stderr
    assert seconds < 30, seconds
    cached = cache_entries(out)
    assert 0 < cached <= made

    with FakeOpenAI() as again:  # another port, the same model: the cache keys do not hold the URL
        second = run_labtax("generate", "-n", "3", "--output", str(out), cwd=root, env=_env(again))
    assert second.returncode == 0, (second.stdout, second.stderr)
    summary = json.loads((out / "summary.json").read_text())
    this_run = summary["run"]["leaves"]
    assert summary["totals"]["accepted"] == 6 and len(this_run) == 2
    assert sum(summary["leaves"][leaf]["cached_calls"] for leaf in this_run) == cached
    assert 0 < again.calls() == sum(summary["leaves"][leaf]["teacher_calls"] for leaf in this_run)
    assert "teacher_error" not in (out / "review" / "rejected.jsonl").read_text()


# -- 2. a server that cannot give log-probabilities ------------------------------------------------------------


def test_llama_cpps_500_about_logprobs_falls_back_once_with_a_warning_and_is_recorded(tmp_path):
    def no_logprobs(request: dict) -> Reply:
        return LLAMA_CPP_NO_LOGPROBS if request.get("logprobs") else good_teacher(request)

    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    out = tmp_path / "out"
    with FakeOpenAI(no_logprobs) as fake:
        proc = run_labtax("generate", "-n", "2", "--output", str(out), cwd=root, env=_env(fake))
        asked = [r for r in fake.requests if r.get("logprobs")]
        judged = [r for r in fake.requests if stage_of(r).startswith("judge")]
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert len(asked) == 1 and len(judged) > 1  # one refusal, not retried; every judge call went on without
    warnings = [line for line in proc.stderr.splitlines() if "log-probabilities" in line]
    assert len(warnings) == 1, proc.stderr
    assert "HTTP 500" in warnings[0] and "logits_all=False" in warnings[0] and "--logits_all True" in warnings[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["judge_logprobs"] is False
    (leaf,) = summary["leaves"].values()
    assert leaf["accepted"] == 2 and "teacher_error" not in leaf["rejected"]

    def sure(request: dict) -> Reply:
        return judge_reply({"3": 0.9, "1": 0.1}) if stage_of(request).startswith("judge") else good_teacher(request)

    with FakeOpenAI(sure) as fake:  # a judge that gives them
        proc = run_labtax("generate", "-n", "1", "--output", str(tmp_path / "other"), cwd=root, env=_env(fake))
    assert proc.returncode == 0 and "log-probabilities" not in proc.stderr, proc.stderr
    assert json.loads((tmp_path / "other" / "summary.json").read_text())["run"]["judge_logprobs"] is True


# Answers a misconfigured endpoint gives every call, in the servers' own shapes: vLLM's 404 for a model it does
# not serve (vllm/entrypoints/openai/serving_engine.py), Ollama's, vLLM's older top-level 400 for a model without
# a chat template (transformers >= 4.44 refuses a default one), and a 404 that names no model (a wrong path).
UNUSABLE = {
    "vllm_no_such_model": (
        404,
        {"error": {"message": "The model `fake-teacher` does not exist.", "type": "NotFoundError", "code": 404}},
        "does not serve the model 'fake-teacher'",
        "--model",
    ),
    "ollama_no_such_model": (
        404,
        {"error": {"message": 'model "fake-teacher" not found, try pulling it first', "type": "api_error"}},
        "does not serve the model 'fake-teacher'",
        "--model",
    ),
    "vllm_no_chat_template": (
        400,
        {
            "object": "error",
            "message": "As of transformers v4.44, default chat template is no longer allowed, so you must provide "
            "a chat template if the tokenizer does not define one.",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        },
        "has no chat template for 'fake-teacher'",
        "--chat-template",
    ),
    "wrong_path": (404, {"detail": "Not Found"}, "has no chat-completions API at that address", "/v1"),
}


@pytest.mark.parametrize("case", sorted(UNUSABLE))
def test_an_endpoint_that_refuses_every_call_the_same_way_stops_the_run_with_the_fix(tmp_path, case):
    """#27 item 4: a wrong model name, a model without a chat template, a URL without the chat API are not a
    verdict on the data: one line with the fix, exit 2, after the first answer, not 'teacher_error' for all."""
    status, body, says, fix = UNUSABLE[case]
    root = make_taxonomy(tmp_path / "tax", ("freeform", "knowledge"))
    with FakeOpenAI(lambda request: Reply(status=status, raw_body=json.dumps(body).encode())) as fake:
        proc = run_labtax("generate", "-n", "3", "--output", str(tmp_path / "out"), cwd=root, env=_env(fake))
        calls = fake.calls()
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("labtax: error:")]
    assert len(errors) == 1 and says in errors[0] and fix in errors[0], proc.stderr
    assert "teacher_error" not in proc.stdout + proc.stderr and "re-run the same command" in errors[0]
    assert calls <= 8  # the calls already in flight (--concurrency 8), not one per candidate and attempt


def context_window(limit: int):
    """A server with a `limit`-token context window (a token a word): a longer prompt gets llama-cpp-python's
    400 (its recorded wording, tests/recorded/llama_cpp.json), a shorter one good_teacher's answer."""

    def respond(request: dict) -> Reply:
        words = sum(len(m["content"].split()) for m in request["messages"])
        if words <= limit:
            return good_teacher(request)
        message = (
            f"This model's maximum context length is {limit} tokens. However, you requested {words + 12} tokens "
            f"({words} in the messages, 12 in the completion). Please reduce the length of the messages or completion."
        )
        error = {"message": message, "type": "invalid_request_error", "param": "messages"}
        return Reply(status=400, raw_body=json.dumps({"error": {**error, "code": "context_length_exceeded"}}).encode())

    return respond


def test_prompts_past_a_small_context_window_are_shortened_to_fit_and_a_rerun_asks_nothing(tmp_path):
    """#27 item 4: a window smaller than the prompts (llama-cpp-python's default n_ctx is 2048) costs seed
    examples, then document text, not every candidate; the summary and the run's output say how many calls."""
    root = make_taxonomy(tmp_path / "tax")
    out = tmp_path / "out"
    with FakeOpenAI(context_window(450)) as fake:
        first = run_labtax("generate", "-n", "2", "--no-calibrate", "--output", str(out), cwd=root, env=_env(fake))
        too_long = sum(1 for r in fake.requests if sum(len(m["content"].split()) for m in r["messages"]) > 450)
        asked = fake.calls()
        again = run_labtax("generate", "-n", "2", "--no-calibrate", "--output", str(out), cwd=root, env=_env(fake))
        asked_again = fake.calls() - asked
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    summary = json.loads((out / "summary.json").read_text())
    shortened = {path: leaf.get("prompts_shortened", 0) for path, leaf in summary["leaves"].items()}
    assert too_long > 0 and sum(shortened.values()) > 0, shortened
    assert shortened[f"{LEAVES_PATHS['knowledge']}/qna.yaml"] > 0  # its prompts carry a document chunk
    assert all(leaf["accepted"] == 2 and "teacher_error" not in leaf["rejected"] for leaf in summary["leaves"].values())
    assert "shortened to fit the model's context window" in first.stdout and "--n_ctx" in first.stdout
    assert asked_again == 0  # every shortened prompt's answer is found in the cache


def test_a_window_too_small_for_any_prompt_rejects_with_the_fix_and_the_run_goes_on(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    out = tmp_path / "out"
    with FakeOpenAI(context_window(40)) as fake:
        proc = run_labtax("generate", "-n", "1", "--no-calibrate", "--output", str(out), cwd=root, env=_env(fake))
    assert proc.returncode == 0, proc.stderr
    (leaf,) = json.loads((out / "summary.json").read_text())["leaves"].values()
    assert leaf["accepted"] == 0 and leaf["rejected"].get("teacher_error", 0) >= 1
    rejected = json.loads((out / "review" / "rejected.jsonl").read_text().splitlines()[0])
    assert "maximum context length is 40 tokens" in rejected["detail"] and "--n_ctx" in rejected["detail"]


# -- 3. one deadline per call ---------------------------------------------------------------------------------


def test_a_call_slower_than_the_timeout_fails_at_the_deadline_not_after_every_retry():
    with FakeOpenAI(lambda request: Reply("late", delay=2.0)) as fake:

        async def go():
            # Before: 1 s per read, 4 retries: about 10 s before the call failed.
            teacher = OpenAITeacher(fake.base_url, "k", "fake-teacher", timeout=1.0, max_retries=4)
            started = time.monotonic()
            try:
                with pytest.raises(TeacherError) as caught:
                    await teacher.complete([{"role": "user", "content": "hi"}])
            finally:
                await teacher.aclose()
            return caught.value, time.monotonic() - started

        error, _ = asyncio.run(go())
        asked = fake.calls()
    assert not isinstance(error, EndpointUnreachable)
    assert "timed out: no answer within 1 s" in str(error) and "--timeout" in str(error)
    # Counted, not timed: one deadline for the call leaves room for at most a second try; per-read timeouts asked
    # once and then retried 4 times (5 requests).
    assert asked <= 2, asked


def test_calls_queued_at_a_one_at_a_time_server_wait_their_turn_and_a_silent_one_fails_them_all():
    """#27 item 3: llama.cpp serves one request at a time, so with 4 in flight the last waits for 3 others. A
    deadline counted from the call's start failed it (1 s each, 2.5 s deadline: calls 3 and 4 were lost); counted
    from the server's last answer, a queued call waits its turn while the server keeps answering. A server that
    answers nothing still fails every call (each at its deadline, none hangs)."""
    lock, hung = threading.Lock(), threading.Event()

    def one_at_a_time(request: dict) -> Reply:
        with lock:  # the server's single slot
            time.sleep(1.0)
        return Reply("ok")

    def silent(request: dict) -> Reply:
        hung.wait(30)
        return Reply("too late")

    async def four(base_url: str) -> list:
        teacher = OpenAITeacher(base_url, "k", "fake-teacher", concurrency=4, timeout=2.5, max_retries=0)
        try:
            calls = [teacher.complete([{"role": "user", "content": f"q{i}"}]) for i in range(4)]
            return await asyncio.gather(*calls, return_exceptions=True)
        finally:
            await teacher.aclose()

    with FakeOpenAI(one_at_a_time) as fake:
        queued = asyncio.run(four(fake.base_url))
    assert [r[0].text if isinstance(r, list) else repr(r) for r in queued] == ["ok"] * 4
    with FakeOpenAI(silent) as fake:
        try:
            lost = asyncio.run(four(fake.base_url))
        finally:
            hung.set()
    assert all(isinstance(r, TeacherError) and "timed out" in str(r) for r in lost), lost


@pytest.mark.parametrize("where", ["option", "settings"])
def test_the_timeout_option_and_setting_are_honoured(tmp_path, where):
    def slow_answers(request: dict) -> Reply:
        reply = good_teacher(request)
        if stage_of(request) == "answer":
            reply.delay = 1.5
        return reply

    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    args = ["generate", "-n", "1", "--max-attempts", "2", "--no-calibrate", "--output", str(tmp_path / "out")]
    if where == "option":
        args += ["--timeout", "0.5"]
    else:
        (root / ".labtax.toml").write_text("[teacher]\ntimeout = 0.5\n")
    with FakeOpenAI(slow_answers) as fake:
        proc = run_labtax(*args, cwd=root, env=_env(fake))
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    (leaf,) = json.loads((tmp_path / "out" / "summary.json").read_text())["leaves"].values()
    assert leaf["accepted"] == 0 and leaf["rejected"] == {"teacher_error": 2}
    rejected = (tmp_path / "out" / "review" / "rejected.jsonl").read_text()
    assert "no answer within 0.5 s" in rejected


def test_a_timeout_setting_that_is_no_number_of_seconds_is_refused(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    (root / ".labtax.toml").write_text('[teacher]\ntimeout = "soon"\n')
    with FakeOpenAI() as fake:
        proc = run_labtax("generate", "-n", "1", "--output", str(tmp_path / "out"), cwd=root, env=_env(fake))
        assert fake.calls() == 0
    assert proc.returncode == 2
    assert "timeout in [tool.labtax.teacher]" in proc.stderr and "--timeout SECONDS" in proc.stderr


# -- 4. calibration never swallows a failed call --------------------------------------------------------------


def test_a_failed_calibration_call_marks_the_leaf_incomplete_and_a_finished_run_reruns_with_no_call(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    out = tmp_path / "out"
    broken = {"on": True}

    def responder(request: dict) -> Reply:
        if broken["on"] and request.get("seed") == CALIBRATION_INDEX + 1:  # the leaf's first calibration call
            return Reply(status=500)
        return good_teacher(request)

    def run(fake) -> dict:
        async def go():
            teacher = OpenAITeacher(fake.base_url, "k", "fake-teacher", max_retries=1)
            try:
                settings = Settings(num_samples=2, max_attempts=2, calibrate=True)
                return await run_generation(leaves_of(root), teacher, out, settings)
            finally:
                await teacher.aclose()

        return asyncio.run(go())

    with FakeOpenAI(responder) as fake:
        first = run(fake)
        (leaf,) = first["leaves"].values()
        assert leaf["gate"]["incomplete"] is True and leaf["gate"]["failed_calls"] == 1
        assert leaf["gate"]["separates"] is None and "HTTP 500" in leaf["gate"]["failure"]
        assert leaf["note"] is None  # the verdict is the gate's field, rendered from it
        assert note_with_verdict(leaf).startswith("calibration incomplete: 1 of the gate's calibration calls failed")

        broken["on"] = False
        second = run(fake)  # completes the calibration: the failed call, asked again
        (leaf,) = second["leaves"].values()
        assert leaf["gate"]["incomplete"] is False and leaf["gate"]["separates"] is not None
        assert leaf["teacher_calls"] >= 1
        before, samples = fake.calls(), (out / "compositional.jsonl").read_text()

        third = run(fake)  # a finished run, again: not one call
        (leaf,) = third["leaves"].values()
        assert fake.calls() == before and leaf["teacher_calls"] == 0
        assert leaf["gate"] == second["leaves"][next(iter(second["leaves"]))]["gate"]
        assert (out / "compositional.jsonl").read_text() == samples
    assert CallCache(out / ".cache" / "calls")  # the cache is intact and readable


def test_an_endpoint_dripping_a_byte_a_second_is_cut_at_the_deadline():
    """Each read gets a byte within the client's per-read timeout; only the call's own deadline ends it (#24
    item 9: a byte every 20 s held a call for minutes)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
                while not stop.wait(1.0):
                    try:
                        conn.sendall(b" ")
                    except OSError:
                        break

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"

    async def go():
        teacher = OpenAITeacher(base_url, "k", "fake-teacher", timeout=2.0, max_retries=4)
        started = time.monotonic()
        try:
            with pytest.raises(TeacherError) as caught:
                await teacher.complete([{"role": "user", "content": "hi"}])
        finally:
            await teacher.aclose()
        return caught.value, time.monotonic() - started

    try:
        error, seconds = asyncio.run(go())
    finally:
        stop.set()
        thread.join(5)
        listener.close()
    assert "timed out" in str(error), error
    assert seconds < 60, seconds  # a hang guard only (it held the call for minutes); the deadline is the 2 s asked
