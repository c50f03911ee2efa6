"""A small scripted OpenAI-compatible server on 127.0.0.1 for tests and benchmarks.

It speaks the real wire format of /v1/chat/completions and /v1/models, so the real `openai` client
drives it. Behaviour is scripted: a `responder(request) -> str | Reply` decides each answer, and
`faults` (a list consumed in order) injects 429 (with Retry-After), 500, timeouts, garbage bodies and
truncated output. A Reply's `top_logprobs` (one {token: logprob} per generated token) is sent in OpenAI's
`logprobs` format when the request asks for logprobs; `refuse_logprobs=True` makes the server answer such
a request 400, as servers without them do. `authorizations` records, per request, the model asked and the
Authorization header (tests/test_credentials.py: which key reached which endpoint).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORDS = [
    "river",
    "budget",
    "lantern",
    "harvest",
    "orbit",
    "canvas",
    "velvet",
    "glacier",
    "ledger",
    "compass",
    "meadow",
    "signal",
    "quartz",
    "ember",
    "harbor",
    "fossil",
    "prism",
    "tundra",
    "violin",
    "beacon",
    "cedar",
    "mosaic",
    "nectar",
    "pylon",
    "saddle",
    "thimble",
    "walnut",
    "yarrow",
    "zephyr",
    "anchor",
    "bramble",
    "cobalt",
    "dune",
    "falcon",
    "garnet",
    "hazel",
    "iris",
    "jasper",
    "kettle",
    "lotus",
    "marble",
    "nutmeg",
    "opal",
    "pepper",
    "quill",
]


@dataclass
class Reply:
    content: str = ""
    finish_reason: str = "stop"
    status: int = 200
    headers: dict | None = None
    raw_body: bytes | None = None  # sent as-is (garbage JSON)
    delay: float = 0.0
    top_logprobs: list[dict[str, float]] | None = None  # sent when the request has logprobs: true


def digit_logprobs(**probabilities: float) -> list[dict[str, float]]:
    """A one-token judge reply's top_logprobs from probabilities by digit: digit_logprobs(**{"3": 0.7, "1": 0.3})."""
    return [{digit: math.log(p) for digit, p in probabilities.items() if p > 0}]


def judge_reply(probabilities: dict[str, float]) -> Reply:
    """A judge's reply: the most likely digit as text, with those probabilities as its top_logprobs."""
    return Reply(max(probabilities, key=lambda d: probabilities[d]), top_logprobs=digit_logprobs(**probabilities))


def openai_logprobs(steps: list[dict[str, float]], top: int) -> dict:
    def entry(token: str, logprob: float) -> dict:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode())}

    content = []
    for step in steps:
        ranked = sorted(step.items(), key=lambda item: -item[1])
        content.append({**entry(*ranked[0]), "top_logprobs": [entry(t, lp) for t, lp in ranked[:top]]})
    return {"content": content, "refusal": None}


def words_for(seed: int, n: int, salt: str = "") -> str:
    digest = hashlib.sha256(f"{salt}:{seed}".encode()).digest()
    return " ".join(WORDS[b % len(WORDS)] for b in digest[:n])


def stage_of(request: dict) -> str:
    system = request["messages"][0]["content"].lower()
    user = request["messages"][-1]["content"].lower()
    if "write new tasks" in system:
        return "question"
    if "short source texts" in system:
        return "context"
    if "question and answer pairs" in system:
        return "qa"
    if "one digit" in system:
        if "document" in user or "domain:" in user:
            return "judge_knowledge"
        return "judge_pair" if "\nanswer:" in user else "judge_question"
    return "answer"


def good_teacher(request: dict) -> Reply:
    """Well-formed, distinct, passing output for every stage."""
    seed = request.get("seed") or 0
    salt = hashlib.sha256(json.dumps(request["messages"]).encode()).hexdigest()
    stage = stage_of(request)
    if stage == "question":
        return Reply(f"1. How would you describe {words_for(seed, 7, salt)} to a new colleague?")
    if stage == "context":
        return Reply("Notes: " + " ".join(words_for(seed + k, 6, salt) for k in range(5)) + ".")
    if stage == "qa":
        return Reply(
            f"Question: What links {words_for(seed, 6, salt)} in the document?\nAnswer: The document says {words_for(seed, 5, 'a')}."
        )
    if stage.startswith("judge"):
        return Reply(judge_score(request))
    return Reply(f"Answer: A clear reply about {words_for(seed, 5, 'ans')}.")


_JUDGED_ANSWER = re.compile(r"\nAnswer: (.*)\n[^\n]*3 = yes", re.S)


def judge_score(request: dict) -> str:
    """A judge in miniature: an answer that is a refusal or stops mid-sentence scores 1, any other 3. So the
    gate's calibration separates a leaf's seeds from its corrupted copies (a refusal, an answer cut to a
    quarter) as a real judge would, and the fake's samples are vetted, as a working judge's are."""
    match = _JUDGED_ANSWER.search(request["messages"][-1]["content"])
    if match is None:
        return "3"
    answer = match.group(1).strip()
    refused = answer.lower().startswith(("i'm sorry", "i am sorry", "i cannot", "i can't"))
    last = answer.splitlines()[-1] if answer else ""  # a short last line is a signature or a list item, not a cut
    cut = len(last.split()) >= 6 and not last.rstrip().endswith((".", "!", "?", ")", '"', "`", ":"))
    return "1" if refused or cut else "3"


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        """A client that went away (a cancelled call, a stopped run) is not an error of the server's."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LocalServer:
    """An HTTP server on 127.0.0.1 for the block (`with`): its handler class, its /v1 base URL, a quick shutdown."""

    def start_server(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = _QuietServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class FakeOpenAI(LocalServer):
    def __init__(
        self,
        responder=good_teacher,
        latency: float = 0.0,
        model: str = "fake-teacher",
        refuse_logprobs: bool = False,
        one_at_a_time: float = 0.0,
    ):
        """`one_at_a_time`: seconds per completion token of a server that decodes one request at a time (its
        other requests wait for the slot, as at llama.cpp's default server); 0: every request at once."""
        self.responder = responder
        self.latency = latency
        self.one_at_a_time = one_at_a_time
        self.slot = threading.Lock()
        self.inside = 0  # requests received and not yet answered
        self.loads: list[int] = []  # per request, how many were inside the server when it arrived (itself included)
        self.model = model
        self.refuse_logprobs = refuse_logprobs
        self.faults: list = []
        self.requests: list[dict] = []
        self.authorizations: list[tuple[str | None, str | None]] = []  # per request: (model asked, Authorization)
        self.lock = threading.Lock()
        self.start_server(self._handler())

    def calls(self, stage: str | None = None) -> int:
        with self.lock:
            return sum(1 for r in self.requests if stage is None or stage_of(r) == stage)

    def _next_reply(self, request: dict) -> Reply:
        with self.lock:
            self.requests.append(request)
            fault = self.faults.pop(0) if self.faults else None
        if fault is not None:
            return fault if isinstance(fault, Reply) else fault(request)
        return self.responder(request)

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body: bytes, headers=None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                with fake.lock:
                    fake.authorizations.append((None, self.headers.get("Authorization")))
                if self.path.rstrip("/").endswith("/models"):
                    self._send(
                        200,
                        json.dumps(
                            {
                                "object": "list",
                                "data": [{"id": fake.model, "object": "model", "created": 0, "owned_by": "fake"}],
                            }
                        ).encode(),
                    )
                else:
                    self._send(404, b'{"error": {"message": "not found"}}')

            def do_POST(self):
                with fake.lock:
                    fake.inside += 1
                    fake.loads.append(fake.inside)
                try:
                    self._post()
                finally:
                    with fake.lock:
                        fake.inside -= 1

            def _post(self):
                length = int(self.headers.get("Content-Length", 0))
                request = json.loads(self.rfile.read(length) or b"{}")
                with fake.lock:
                    fake.authorizations.append((request.get("model"), self.headers.get("Authorization")))
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, b'{"error": {"message": "not found"}}')
                    return
                if fake.refuse_logprobs and request.get("logprobs"):
                    with fake.lock:
                        fake.requests.append(request)
                    message = {"message": "logprobs is not supported by this model", "type": "invalid_request_error"}
                    self._send(400, json.dumps({"error": {**message, "param": "logprobs"}}).encode())
                    return
                reply = fake._next_reply(request)
                if isinstance(reply, str):
                    reply = Reply(reply)
                time.sleep(fake.latency + reply.delay)
                if fake.one_at_a_time:
                    with fake.slot:
                        time.sleep(fake.one_at_a_time * len(reply.content.split()))
                if reply.raw_body is not None:
                    self._send(reply.status, reply.raw_body, reply.headers)
                    return
                if reply.status != 200:
                    self._send(
                        reply.status,
                        json.dumps({"error": {"message": f"injected {reply.status}", "type": "fake"}}).encode(),
                        reply.headers,
                    )
                    return
                prompt_tokens = sum(len(m["content"].split()) for m in request["messages"])
                completion_tokens = len(reply.content.split())
                body = {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": request.get("model", fake.model),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply.content},
                            "finish_reason": reply.finish_reason,
                            "logprobs": openai_logprobs(reply.top_logprobs, request.get("top_logprobs") or 0)
                            if request.get("logprobs") and reply.top_logprobs
                            else None,
                        }
                    ],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens,
                    },
                }
                self._send(200, json.dumps(body).encode(), reply.headers)

        return Handler


def question_of(request: dict) -> str:
    match = re.search(r"Task: (.+)", request["messages"][-1]["content"])
    return match.group(1) if match else ""
