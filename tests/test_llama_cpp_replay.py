"""labtax against a real llama.cpp server's own answers, replayed: the exact JSON llama-cpp-python 0.3.36 returned
(tests/recorded/llama_cpp.json, written by tests/recorded/record_llama_cpp.py from the real server), served on
127.0.0.1 to labtax's real client. So the default run checks the real server's format (its echoed prompt
log-probabilities with special tokens spelled "", the one token it generates past the prompt, its chat
logprobs, its HTTP 500 without --logits_all), not one imagined here; tests/test_llama_cpp.py runs the server.
"""

from __future__ import annotations

import asyncio
import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from labtax.errors import LabtaxError
from labtax.teacher.base import TeacherError
from labtax.teacher.endpoint_scorer import ChatTemplate, ScoringJudge
from labtax.teacher.openai_backend import OpenAITeacher

from .conftest import REPO
from .fake_openai import LocalServer

RECORDED = json.loads((REPO / "tests" / "recorded" / "llama_cpp.json").read_text(encoding="utf-8"))


class Replay(LocalServer):
    """A server that answers each request with what the real one answered to the same request (404 otherwise)."""

    def __init__(self, completions: dict[str, dict], chat: dict | None = None):
        self.completions = completions  # prompt -> recorded {"status", "response"}
        self.chat = chat or {}  # "plain" / "logprobs" -> recorded
        self.requests: list[dict] = []
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                replay.requests.append(body)
                if body.get("stream") and "stream" in replay.chat:  # the recorded Server-Sent Events, as sent
                    text = replay.chat["stream"]["text"].encode()
                    self.send_response(replay.chat["stream"]["status"])
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Content-Length", str(len(text)))
                    self.end_headers()
                    self.wfile.write(text)
                    return
                if self.path.endswith("/completions") and not self.path.endswith("/chat/completions"):
                    found = replay.completions.get(body.get("prompt"))
                else:
                    found = replay.chat.get("logprobs" if body.get("logprobs") else "plain")
                status, payload = (found["status"], found["response"]) if found else (404, {"error": "not recorded"})
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.start_server(Handler)


@pytest.fixture(scope="module")
def template(cold_start) -> ChatTemplate:
    """SmolLM2's own tokenizer and chat template: the embedded model's converted folder (`labtax teacher path`)."""
    return ChatTemplate(Path(cold_start[1][0]["path"]))


def _scores(base_url: str, template: ChatTemplate, item: dict):
    async def go():
        judge = ScoringJudge(OpenAITeacher(base_url, None, "smollm2", concurrency=1, max_retries=0), template)
        try:
            await judge.probe()
            return await judge.loglikelihood([item["messages"]], item["reply"])
        finally:
            await judge.aclose()

    return asyncio.run(go())


@pytest.mark.model
def test_replies_score_over_the_servers_echo_as_the_embedded_scorer_does(template):
    """Each reply's score is the sum of its recorded token log-probabilities (the generated token left out),
    and within 5% (+0.75 nats) of the embedded scorer's: llama.cpp multiplies the Q4_1 weights with 8-bit
    activations, the embedded model runs the same weights dequantized in bfloat16 (measured: 0.07-0.71 nats
    apart on totals of 9-61 nats). The ranking of a reply's conversations, what the relevance check uses,
    is the same."""
    scoring = RECORDED["scoring"]
    endpoint: dict[str, list[float]] = {}
    with Replay({item["prompt"]: item["echo"] for item in scoring}) as server:
        for item in scoring:
            head, tail, ids = template.split(item["messages"], item["reply"])
            assert (head + tail, len(ids)) == (item["prompt"], item["tokens"])  # the prompt the server scored
            (got,) = _scores(server.base_url, template, item)
            logprobs = item["echo"]["response"]["choices"][0]["logprobs"]["token_logprobs"]
            generated = item["echo"]["response"]["usage"]["completion_tokens"]
            own = logprobs[len(logprobs) - generated - item["tokens"] : len(logprobs) - generated]
            assert got is not None and got.total == round(sum(own), 4) and got.end == round(own[-1], 4)
            total = item["embedded"][0]
            assert abs(got.total - total) <= 0.05 * abs(total) + 0.75, (item["reply"], got, item["embedded"])
            endpoint.setdefault(item["reply"], []).append(got.total)
        sent = [r for r in server.requests if r.get("prompt") in {i["prompt"] for i in scoring}]
        assert len(sent) >= len(scoring) and all(r["echo"] is True and r["logprobs"] == 1 for r in sent)
    for reply, totals in endpoint.items():
        embedded = [item["embedded"][0] for item in scoring if item["reply"] == reply]
        assert sorted(range(3), key=totals.__getitem__) == sorted(range(3), key=embedded.__getitem__), reply


@pytest.mark.model
def test_a_server_without_prompt_logprobs_is_refused_before_the_run_with_the_fix(template):
    """llama.cpp started with --logits_all False answers the echo with HTTP 500 (recorded): the probe turns that
    into one error naming the server option, not a run whose likelihood checks quietly decide nothing."""
    probe = RECORDED["scoring"][0]
    refused = RECORDED["echo_without_logits_all"]
    assert refused["status"] == 500
    with Replay({probe["prompt"]: refused}) as server, pytest.raises(LabtaxError, match="--logits_all True"):
        _scores(server.base_url, template, probe)


@pytest.mark.model
def test_an_endpoint_that_cannot_score_is_refused_before_the_run_with_the_fix(template):
    """A chat-only API has no /v1/completions (404): the probe says so before the run, with the fix, rather than
    a run whose likelihood checks quietly decide nothing."""
    with Replay({}) as server, pytest.raises(LabtaxError, match="a chat-only API does not"):
        _scores(server.base_url, template, RECORDED["scoring"][0])


def test_a_prompt_past_the_context_window_names_the_server_option():
    """llama.cpp's 400 for a prompt longer than --n_ctx (recorded) becomes one line with the fix."""
    exceeded = RECORDED["context_exceeded"]
    assert exceeded["status"] == 400

    async def go(base_url: str):
        teacher = OpenAITeacher(base_url, None, "smollm2", concurrency=1, max_retries=0)
        try:
            await teacher.complete(exceeded["request"]["messages"], max_tokens=12)
        finally:
            await teacher.aclose()

    with (
        Replay({}, {"plain": exceeded}) as server,
        pytest.raises(TeacherError, match=r"maximum context length is 2048 tokens.*--n_ctx"),
    ):
        asyncio.run(go(server.base_url))


@pytest.mark.model
def test_a_tokenizer_that_is_not_the_served_models_is_refused(template):
    """The server's own split of the reply must be the template tokenizer's: the recorded echo with the reply's
    token texts changed (as another model's vocabulary would split it) is refused, never scored."""
    item = RECORDED["scoring"][3]
    other = json.loads(json.dumps(item["echo"]))
    tokens = other["response"]["choices"][0]["logprobs"]["tokens"]
    tokens[-3] = tokens[-3] + "x"
    probe = RECORDED["scoring"][0]
    with (
        Replay({probe["prompt"]: probe["echo"], item["prompt"]: other}) as server,
        pytest.raises(TeacherError, match="not the served model's"),
    ):
        _scores(server.base_url, template, item)


def test_the_chat_replies_parse_as_the_server_wrote_them():
    """Chat and chat with logprobs, as llama.cpp answers them, through labtax's client: text, finish reason, and
    the top log-probabilities of every generated token."""
    chat, scored = RECORDED["chat"], RECORDED["chat_logprobs"]

    async def go(base_url: str):
        teacher = OpenAITeacher(base_url, None, "smollm2", concurrency=1, max_retries=0)
        try:
            plain = await teacher.complete(chat["request"]["messages"], max_tokens=12, temperature=0, seed=1)
            logprobs = await teacher.complete(
                chat["request"]["messages"], max_tokens=12, temperature=0, seed=1, top_logprobs=2
            )
            return plain, logprobs, teacher.logprobs_supported
        finally:
            await teacher.aclose()

    with Replay({}, {"plain": chat, "logprobs": scored}) as server:
        (plain,), (with_logprobs,), supported = asyncio.run(go(server.base_url))
    assert plain.text == chat["response"]["choices"][0]["message"]["content"]
    assert plain.finish_reason == chat["response"]["choices"][0]["finish_reason"]
    content = scored["response"]["choices"][0]["logprobs"]["content"]
    assert supported is True and with_logprobs.top_logprobs is not None
    assert len(with_logprobs.top_logprobs) == len(content)
    first = {c["token"]: c["logprob"] for c in content[0]["top_logprobs"]}
    assert with_logprobs.top_logprobs[0] == pytest.approx(first)


def events(text: str) -> list:
    """The JSON of each `data:` event of a Server-Sent Events body, then "[DONE]"."""
    found = [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]
    return [item if item == "[DONE]" else json.loads(item) for item in found]


def test_the_recorded_stream_reads_as_the_same_reply_and_labtax_serve_streams_the_same_shape():
    """llama.cpp's stream, replayed to the openai client, is the reply its non-streamed answer gave; and
    `labtax serve` streams the same chunks: the same fields at each level, a first delta with the role, the text in
    deltas, a finish reason in the last, then [DONE] (the shapes chat UIs and the `llm` CLI read)."""
    import http.client
    import threading

    import openai

    from labtax.teacher.base import Completion
    from labtax.teacher.server import make_server

    recorded, chat = RECORDED["stream"], RECORDED["chat"]
    reply = chat["response"]["choices"][0]["message"]["content"]
    with Replay({}, {"stream": recorded}) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0)
        chunks = list(client.chat.completions.create(**{k: v for k, v in recorded["request"].items()}))
        client.close()
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == reply
    assert chunks[-1].choices[0].finish_reason == chat["response"]["choices"][0]["finish_reason"]

    class Streaming:  # answers with the recorded reply, word by word, as the embedded teacher streams its tokens
        model = "smollm2"

        def submit(self, messages, *, n=1, on_text=None, cancel=None, **options):
            import concurrent.futures

            future: concurrent.futures.Future = concurrent.futures.Future()
            words = reply.split(" ")
            for i, word in enumerate(words):
                on_text(0, word if i == 0 else " " + word, "length" if i == len(words) - 1 else None)
            future.set_result([Completion(reply, "length", 8, len(words))])
            return future

    served = make_server(Streaming(), "127.0.0.1", 0)
    thread = threading.Thread(target=served.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", served.server_address[1], timeout=10)
        body = json.dumps(recorded["request"]).encode()
        connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        ours = events(connection.getresponse().read().decode())
        connection.close()
    finally:
        served.shutdown()
        served.server_close()
    theirs = events(recorded["text"])
    assert ours[-1] == theirs[-1] == "[DONE]"
    ours, theirs = ours[:-1], theirs[:-1]
    for stream in (ours, theirs):
        assert stream[0]["choices"][0]["delta"]["role"] == "assistant"
        assert stream[-1]["choices"][0]["finish_reason"] == "length"
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in stream) == reply
    assert {frozenset(c) for c in ours} == {frozenset(c) for c in theirs}  # id, object, created, model, choices
    assert {frozenset(c["choices"][0]) for c in ours} == {frozenset(c["choices"][0]) for c in theirs}
