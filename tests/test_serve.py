"""`labtax serve` as the tools people already use see it: the real openai client, LangChain's ChatOpenAI, raw
SSE, raw sockets.

One server (a real `labtax serve --port 0` subprocess on the real SmolLM2-135M-Instruct, from the local
cache) serves the whole module; its stderr goes to a file, so tests can read the log while it runs.
Generations are short and greedy (temperature 0), so a streamed and a plain answer can be compared exactly:
a lone request always decodes in a batch of one.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import run_labtax

pytest.importorskip("torch")
pytest.importorskip("transformers")
openai = pytest.importorskip("openai")
langchain_openai = pytest.importorskip("langchain_openai")  # the consumers extra

MODEL = "SmolLM2-135M-Instruct"
ESSAY = [{"role": "user", "content": "Write a long essay about the history of Rome."}]


@dataclass
class Server:
    base_url: str
    port: int
    log: Path

    def client(self):
        return openai.OpenAI(base_url=self.base_url, api_key="unused", max_retries=0, timeout=300)

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def model_path(model_cache) -> Path:
    from labtax.teacher.smollm import ensure_cache

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LABTAX_CACHE_DIR", str(model_cache))
        return ensure_cache(log=lambda message: None).path


@pytest.fixture(scope="module")
def server(model_path, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "stderr.txt"
    exe = str(Path(sys.executable).parent / "labtax")
    with open(log, "w", encoding="utf-8") as stderr:
        proc = subprocess.Popen([exe, "serve", "--port", "0"], stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        line = _readline_within(proc, 180, log)
        assert "serving SmolLM2-135M-Instruct" in line, line
        base_url = line.split(" at ")[1].split()[0]
        assert base_url.startswith("http://127.0.0.1:"), base_url  # loopback by default
        yield Server(base_url, int(base_url.rsplit(":", 1)[1].split("/")[0]), log)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, log.read_text()
    assert "stopped serving" in out
    assert "Traceback" not in log.read_text(), log.read_text()


def _readline_within(proc, seconds: float, log: Path) -> str:
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(seconds)
    if not lines or not lines[0]:
        proc.kill()
        pytest.fail(f"labtax serve printed nothing within {seconds}s: {log.read_text()}")
    return lines[0]


def _post(port: int, body: dict) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    connection.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    return connection.getresponse()


def test_serve_refuses_remote_hosts():
    refused = run_labtax("serve", "--host", "0.0.0.0", "--port", "0")
    assert refused.returncode == 2 and "--allow-remote" in refused.stderr


def test_serve_answers_the_openai_client(server):
    client = server.client()
    assert [m.id for m in client.models.list().data] == [MODEL]
    response = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Describe the moon."}], n=2, max_tokens=8, temperature=0.5
    )
    assert len(response.choices) == 2
    for choice in response.choices:
        assert choice.message.role == "assistant" and choice.message.content.strip()
        assert choice.finish_reason in {"stop", "length"}
    assert 2 <= response.usage.completion_tokens <= 16 and response.usage.prompt_tokens > 5
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=[], max_tokens=8)


def test_models_retrieve_and_unknown_model(server):
    client = server.client()
    model = client.models.retrieve(MODEL)
    assert (model.id, model.object, model.owned_by) == (MODEL, "model", "labtax")
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("gpt-4o")
    error = caught.value.response.json()["error"]
    assert (
        error["code"] == "model_not_found" and error["type"] == "invalid_request_error" and "gpt-4o" in error["message"]
    )


def test_streaming_delivers_tokens_as_they_are_decoded(server):
    client = server.client()
    ask = {"model": MODEL, "messages": ESSAY, "max_tokens": 16, "temperature": 0, "seed": 7}
    plain = client.chat.completions.create(**ask)
    started = time.monotonic()
    chunks, arrivals = [], []
    for chunk in client.chat.completions.create(**ask, stream=True, stream_options={"include_usage": True}):
        chunks.append(chunk)
        arrivals.append(time.monotonic() - started)
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id and c.model == MODEL for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    content = [
        (t, c.choices[0].delta.content) for t, c in zip(arrivals, chunks) if c.choices and c.choices[0].delta.content
    ]
    assert len(content) > 1, "the answer came in one piece"
    assert content[-1][0] - content[0][0] > 0.05, f"every piece arrived at once: {arrivals}"
    assert "".join(text for _, text in content) == plain.choices[0].message.content
    finish, usage = chunks[-2], chunks[-1]
    assert finish.choices[0].finish_reason == plain.choices[0].finish_reason and finish.choices[0].delta.content is None
    assert usage.choices == [] and usage.usage.completion_tokens == plain.usage.completion_tokens
    assert usage.usage.prompt_tokens == plain.usage.prompt_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_streaming_wire_format_is_openais(server):
    response = _post(
        server.port, {"model": MODEL, "messages": ESSAY, "max_tokens": 3, "n": 2, "temperature": 0.5, "stream": True}
    )
    assert response.status == 200 and response.getheader("Content-Type").startswith("text/event-stream")
    body = response.read().decode("utf-8")  # http.client undoes the chunked transfer encoding
    events = body.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]", body[-200:]
    assert all(event.startswith("data: ") for event in events[:-1])
    chunks = [json.loads(event[len("data: ") :]) for event in events[:-2]]
    assert all(c["object"] == "chat.completion.chunk" and "usage" not in c for c in chunks)
    for index in (0, 1):
        mine = [c["choices"][0] for c in chunks if c["choices"][0]["index"] == index]
        assert mine[0]["delta"] == {"role": "assistant", "content": ""}
        assert mine[-1]["delta"] == {} and mine[-1]["finish_reason"] in {"stop", "length"}
        assert all(m["finish_reason"] is None for m in mine[:-1])


def test_a_stop_string_ends_generation_early(server):
    client = server.client()
    ask = {"model": MODEL, "messages": ESSAY, "max_tokens": 24, "temperature": 0, "seed": 3}
    full = client.chat.completions.create(**ask)
    text = full.choices[0].message.content
    assert full.usage.completion_tokens >= 16, text
    stop = text.split()[2]  # the third word: a few tokens in
    stopped = client.chat.completions.create(**ask, stop=[stop, "never appears"])
    assert stopped.choices[0].message.content == text[: text.index(stop)]
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.usage.completion_tokens * 2 < full.usage.completion_tokens, (stopped.usage, full.usage)
    pieces = [
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(**ask, stop=stop, stream=True)
        if c.choices
    ]
    assert "".join(pieces) == stopped.choices[0].message.content
    assert not any(stop in piece for piece in pieces)


def test_the_async_openai_client_plain_and_streamed(server):
    """openai.AsyncOpenAI: concurrent plain calls (batched together by the server) and a streamed one."""
    ask = {"model": MODEL, "messages": ESSAY, "max_tokens": 10, "temperature": 0}

    async def run():
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=300) as client:
            plain = await asyncio.gather(*(client.chat.completions.create(**ask) for _ in range(3)))
            stream = await client.chat.completions.create(**ask, stream=True, stream_options={"include_usage": True})
            chunks = [chunk async for chunk in stream]
            return plain, chunks

    plain, chunks = asyncio.run(run())
    assert all(p.choices[0].message.content.strip() and p.usage.completion_tokens <= 10 for p in plain)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain[0].choices[0].message.content  # temperature 0: the same greedy decode
    assert chunks[-1].choices == [] and 0 < chunks[-1].usage.completion_tokens <= 10


def test_langchain_chat_openai(server):
    """A second client from PyPI: LangChain's ChatOpenAI, sync and async, plain and streamed, with usage and stop."""
    chat = langchain_openai.ChatOpenAI(
        base_url=server.base_url,
        api_key="unused",
        model=MODEL,
        temperature=0,
        max_tokens=12,
        max_retries=0,
        timeout=300,
        stream_usage=True,
    )
    question = ESSAY[0]["content"]
    answer = chat.invoke(question)
    assert isinstance(answer.content, str) and answer.content.strip()
    assert answer.response_metadata["model_name"] == MODEL
    assert answer.response_metadata["finish_reason"] in {"stop", "length"}
    assert answer.usage_metadata["input_tokens"] > 5 and 0 < answer.usage_metadata["output_tokens"] <= 12

    def check_stream(chunks: list) -> None:
        pieces = [c.content for c in chunks if c.content]
        assert len(pieces) > 1, "the answer came in one piece"
        assert "".join(pieces) == answer.content  # temperature 0, a lone request: the same decode
        total = chunks[0]
        for chunk in chunks[1:]:
            total += chunk
        assert total.content == answer.content
        assert total.usage_metadata["input_tokens"] == answer.usage_metadata["input_tokens"]
        assert total.usage_metadata["output_tokens"] == answer.usage_metadata["output_tokens"] > 0

    check_stream(list(chat.stream(question)))

    async def both() -> tuple:
        plain = await chat.ainvoke(question)
        return plain, [chunk async for chunk in chat.astream(question)]

    async_answer, async_chunks = asyncio.run(both())
    assert async_answer.content == answer.content
    check_stream(async_chunks)

    stop = answer.content.split()[2]  # the third word: a few tokens in
    stopped = chat.invoke(question, stop=[stop, "never appears"])
    assert stopped.content == answer.content[: answer.content.index(stop)]
    assert stopped.response_metadata["finish_reason"] == "stop"
    assert stopped.usage_metadata["output_tokens"] < answer.usage_metadata["output_tokens"]


def test_unsupported_parameters_are_refused_by_name(server):
    client = server.client()
    refused = {
        "response_format": {"response_format": {"type": "json_object"}},
        "tools": {"tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]},
        # logprobs are answered (tests/test_gate_probability.py), except with stream
        "logprobs": {"logprobs": True, "stream": True},
    }
    for name, extra in refused.items():
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model=MODEL, messages=ESSAY, max_tokens=2, **extra)
        error = caught.value.response.json()["error"]
        assert error["param"] == name and error["type"] == "invalid_request_error" and name in error["message"]
        assert error["code"] == "unsupported_parameter"
    with pytest.raises(openai.BadRequestError, match="stream_options"):
        client.chat.completions.create(
            model=MODEL, messages=ESSAY, max_tokens=2, stream_options={"include_usage": True}
        )
    # The neutral values some clients always send are accepted.
    ok = client.chat.completions.create(
        model=MODEL, messages=ESSAY, max_tokens=2, response_format={"type": "text"}, tool_choice="none"
    )
    assert ok.choices[0].message.content is not None


def test_a_client_that_goes_away_cancels_its_generation(server):
    """Closing mid-stream (or while waiting for a plain answer) frees the model at once, without a traceback."""
    for stream in (True, False):
        lines_before = server.stderr().count("client disconnected")
        body = json.dumps(
            {"model": MODEL, "messages": ESSAY, "max_tokens": 4096, "temperature": 0, "stream": stream}
        ).encode()
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=120)
        raw.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body)
        )
        if stream:
            received = b""
            while b"data: " not in received:
                received += raw.recv(4096)
            assert received.startswith(b"HTTP/1.1 200")
        else:
            time.sleep(1.0)
        raw.close()
        deadline = time.monotonic() + 30
        while server.stderr().count("client disconnected") == lines_before:
            assert time.monotonic() < deadline, server.stderr()
            time.sleep(0.1)
        # Had the 4096-token generation gone on, this would wait minutes behind it.
        started = time.monotonic()
        answer = server.client().chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Say hi."}], max_tokens=3
        )
        assert answer.choices[0].message.content
        assert time.monotonic() - started < 60
    log = server.stderr()
    assert "Traceback" not in log and "BrokenPipeError" not in log, log


def test_cancel_drops_a_request_between_steps(model_path):
    """The engine side of a disconnect: a cancelled request stops decoding and its future fails."""
    from labtax.teacher.base import TeacherError
    from labtax.teacher.embedded import EmbeddedTeacher

    cancel = threading.Event()
    pieces: list[str] = []

    def on_text(choice: int, text: str, finish: str | None) -> None:
        pieces.append(text)
        cancel.set()

    engine = EmbeddedTeacher()
    try:
        future = engine.submit(ESSAY, max_tokens=4096, temperature=0, on_text=on_text, cancel=cancel)
        with pytest.raises(TeacherError, match="cancelled"):
            future.result(timeout=300)
        assert 1 <= len(pieces) <= 2, pieces
    finally:
        engine.close()


@pytest.fixture(scope="module")
def tokenizer(model_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_path, local_files_only=True)


def _feed(tokenizer, text: str, stop: list[str]) -> tuple[list[str], object, int]:
    """Feed `text`'s tokens one by one, as the decoder does: the pieces handed out, the tracker, tokens used."""
    from labtax.teacher.decoder import TextStream

    ids = tokenizer(text, add_special_tokens=False).input_ids
    tracker, pieces, tokens = TextStream(tokenizer, stop), [], []
    for token in ids:
        tokens.append(token)
        if tracker.add(tokens):
            break
        pieces.append(tracker.take())
    else:
        tracker.add(tokens, final=True)
    pieces.append(tracker.take(final=True))
    return pieces, tracker, len(tokens)


def test_incremental_text_never_splits_a_character_or_leaks_a_stop(tokenizer):
    text = "Café au lait 😀 costs 3€. ENDING now, and more text after it."
    pieces, tracker, used = _feed(tokenizer, text, [])
    assert "".join(pieces) == tracker.text == text and not tracker.stopped
    assert not any("\ufffd" in piece for piece in pieces)
    assert sum(1 for piece in pieces if piece) > 5  # it grew piece by piece

    pieces, tracker, used = _feed(tokenizer, text, ["ENDING", "😀 costs 4"])
    assert tracker.stopped and tracker.text == "".join(pieces) == "Café au lait 😀 costs 3€. "
    assert used < len(tokenizer(text, add_special_tokens=False).input_ids)
    # "😀 costs" looked like the start of a stop string: it was held back, then released in one piece with "3".
    assert any(piece.startswith("😀 costs 3") for piece in pieces), pieces


def test_the_readme_serve_examples_run_as_written(server, capsys):
    """The README's openai, LangChain and curl examples, as written but for the port (`--port 0` here)."""
    from .conftest import REPO
    from .markdown_blocks import block_with

    readme = REPO / "README.md"
    assert block_with(readme, "sh", "labtax serve").strip() == "labtax serve --port 8000"
    written = "http://127.0.0.1:8000/v1"
    assert server.base_url.rstrip("/").endswith("/v1")

    def here(code: str) -> str:
        assert written in code
        return code.replace(written, server.base_url.rstrip("/"))

    for needle in ("from openai import OpenAI", "from langchain_openai import ChatOpenAI"):
        exec(compile(here(block_with(readme, "python", needle)), "README.md", "exec"), {})
        printed = capsys.readouterr().out
        assert printed.strip(), needle  # the model's answer

    curl = here(block_with(readme, "sh", "curl "))
    proc = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    reply = json.loads(proc.stdout)
    assert reply["model"] == MODEL and reply["choices"][0]["message"]["content"].strip()
    assert reply["usage"]["completion_tokens"] <= 40
