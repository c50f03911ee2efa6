"""`labtax serve` against hostile clients and web pages (#24 items 10-14), with a scripted teacher in place of
the model: the HTTP server, its limits and its checks are the real ones, on 127.0.0.1.

A long stop list, slow or half-sent requests, a flood of connections, a body nested 100,000 deep, a client
that leaves before its answer, an unknown model name, and a web page in the user's browser (a text/plain
"simple" POST, another Origin, a rebound Host) each get a plain HTTP answer and one log line, never a
traceback, a reset or the model's time.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import socket
import threading
import time

import pytest

from labtax.teacher.base import Completion
from labtax.teacher.server import make_server

MODEL = "SmolLM2-135M-Instruct"
ASK = {"model": MODEL, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4}


class ScriptedTeacher:
    """Answers every request at once with the same words; records what it was asked."""

    model = MODEL

    def __init__(self):
        self.asked: list[dict] = []

    def submit(self, messages, *, n=1, on_text=None, cancel=None, **options) -> concurrent.futures.Future:
        self.asked.append({"messages": messages, "n": n, **options})
        future: concurrent.futures.Future = concurrent.futures.Future()
        for index in range(n):
            if on_text is not None:
                on_text(index, "hello", "stop")
        future.set_result([Completion("hello", "stop", 3, 1) for _ in range(n)])
        return future


class Log:
    """The server's stderr so far (pytest captures it)."""

    def __init__(self, capsys):
        self.capsys = capsys
        self.text = ""

    def getvalue(self) -> str:
        self.text += self.capsys.readouterr().err
        return self.text


class Running:
    def __init__(self, teacher, log: Log, **options):
        self.teacher = teacher
        self.log = log
        self.server = make_server(teacher, "127.0.0.1", 0, **options)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def post(self, body, headers=None, path="/v1/chat/completions") -> tuple[int, dict, dict]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("POST", path, data, {"Content-Type": "application/json", **(headers or {})})
            response = connection.getresponse()
            payload = response.read()
            headers = dict(response.getheaders())
            streamed = headers.get("Content-Type", "").startswith("text/event-stream")
            return response.status, headers, {} if streamed else json.loads(payload or b"{}")
        finally:
            connection.close()

    def get(self, path, headers=None) -> tuple[int, dict]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", path, headers=headers or {})
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            connection.close()


@pytest.fixture
def serve(capsys):
    """serve(**options) -> a running server with a scripted teacher; its stderr is collected in `.log`."""
    started: list[Running] = []
    log = Log(capsys)

    def start(**options) -> Running:
        running = Running(ScriptedTeacher(), log, **options)
        started.append(running)
        running.thread.start()
        return running

    yield start
    for running in started:
        running.server.shutdown()
        running.server.server_close()
    assert "Traceback" not in log.getvalue(), log.getvalue()


def _error(payload: dict) -> dict:
    return payload["error"]


# -- 10. the stop list ------------------------------------------------------------------------------------------


def test_a_stop_list_past_four_strings_or_long_strings_is_refused(serve):
    server = serve()
    status, _, payload = server.post({**ASK, "stop": [str(i) for i in range(5)]})
    assert status == 400 and _error(payload)["param"] == "stop" and "at most 4" in _error(payload)["message"]
    status, _, payload = server.post({**ASK, "stop": ["x" * 1000]})
    assert status == 400 and _error(payload)["param"] == "stop" and "characters" in _error(payload)["message"]
    status, _, _ = server.post({**ASK, "stop": ["\n\n", "END", "x" * 64, "Q:"]})
    assert status == 200
    assert server.teacher.asked[-1]["stop"] == ["\n\n", "END", "x" * 64, "Q:"]


# -- 11. slow requests, the backlog, excess load ----------------------------------------------------------------


def test_a_half_sent_request_is_closed_at_its_deadline(serve):
    server = serve(request_seconds=1.0)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and then nothing
        assert sock.recv(4096) == b""  # closed by the server (the client's own 10 s timeout would raise instead)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:  # a byte a while: one deadline
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\n")
        closed = False
        try:  # a header line every 0.3 s for up to 60 s: only a deadline for the whole request ends it
            for _ in range(200):
                sock.sendall(b"X-Slow: 1\r\n")
                time.sleep(0.3)
        except OSError:
            closed = True
        assert closed, "the server kept reading a request that never ended"
    assert server.post(ASK)[0] == 200


def test_the_backlog_fits_the_connections_served_and_excess_load_is_answered_503(serve):
    server = serve(max_connections=3, request_seconds=5.0)
    assert server.server.request_queue_size >= 3
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(3)]
    try:
        time.sleep(0.2)  # the three are being served (waiting for their requests)
        status, headers, payload = server.post(ASK)
        assert status == 503 and headers.get("Retry-After") and "busy" in _error(payload)["message"]
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 5
    while server.post(ASK)[0] != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_two_hundred_concurrent_requests_are_each_answered(serve):
    server = serve()
    with concurrent.futures.ThreadPoolExecutor(200) as pool:
        statuses = list(pool.map(lambda _: server.post({**ASK, "stream": True})[0], range(200)))
    assert statuses == [200] * 200


# -- 12. hostile bodies and clients that leave ------------------------------------------------------------------


def test_a_body_nested_100000_deep_is_a_400_and_one_log_line(serve):
    server = serve()
    status, _, payload = server.post(b"[" * 100_000 + b"]" * 100_000)
    assert status == 400 and "nested" in _error(payload)["message"]
    time.sleep(0.2)  # the line is written after the answer
    assert "RecursionError" not in server.log.getvalue()
    assert len([line for line in server.log.getvalue().splitlines() if '" 400 ' in line]) == 1


def test_a_client_that_left_before_its_400_is_one_log_line(serve):
    server = serve()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        body = b"{not json"
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # reset on close
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (server.port, len(body), body)
        )
    deadline = time.monotonic() + 5
    while not server.log.getvalue():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.2)
    lines = server.log.getvalue().splitlines()
    assert len(lines) == 1 and ('" 400 ' in lines[0] or '" 400: the client left' in lines[0]), lines
    assert server.post(ASK)[0] == 200  # and the server is still there


# -- 13. model names ---------------------------------------------------------------------------------------------


def test_an_unknown_model_is_404_model_not_found_and_aliases_are_served(serve):
    server = serve(aliases=("gpt-4o-mini",))
    status, _, payload = server.post({**ASK, "model": "gpt-4o"})
    assert status == 404 and _error(payload)["code"] == "model_not_found" and "gpt-4o" in _error(payload)["message"]
    assert "--model-alias" in _error(payload)["message"]
    assert not server.teacher.asked
    status, _, payload = server.post({**ASK, "model": "gpt-4o-mini"})
    assert status == 200 and payload["model"] == MODEL
    assert server.get("/v1/models/gpt-4o-mini")[0] == 200
    assert server.get("/v1/models/gpt-4o")[0] == 404
    status, _, payload = server.post({key: value for key, value in ASK.items() if key != "model"})
    assert status == 400 and _error(payload)["param"] == "model"


# -- 14. web pages ----------------------------------------------------------------------------------------------


def test_a_simple_text_plain_post_from_a_web_page_is_refused(serve):
    server = serve()
    status, _, payload = server.post(json.dumps(ASK).encode(), {"Content-Type": "text/plain"})
    assert status == 415 and "application/json" in _error(payload)["message"]
    assert not server.teacher.asked
    status, _, _ = server.post(ASK, {"Content-Type": "application/json; charset=utf-8"})
    assert status == 200


def test_another_origin_is_refused_unless_allowed(serve):
    server = serve()
    status, _, payload = server.post(ASK, {"Origin": "https://evil.example"})
    assert status == 403 and "--allow-origin" in _error(payload)["message"]
    assert server.get("/v1/models", {"Origin": "https://evil.example"})[0] == 403
    assert not server.teacher.asked
    assert server.post(ASK, {"Origin": f"http://127.0.0.1:{server.port}"})[0] == 200  # its own origin

    allowed = serve(allow_origins=("http://localhost:3000",))
    status, headers, _ = allowed.post(ASK, {"Origin": "http://localhost:3000"})
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    connection = http.client.HTTPConnection("127.0.0.1", allowed.port, timeout=10)
    connection.request(
        "OPTIONS",
        "/v1/chat/completions",
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
    )
    preflight = connection.getresponse()
    preflight.read()
    connection.close()
    assert preflight.status == 204 and "content-type" in preflight.getheader("Access-Control-Allow-Headers").lower()
    assert allowed.post(ASK, {"Origin": "https://evil.example"})[0] == 403


def test_a_host_other_than_the_bound_address_is_refused(serve):
    server = serve()
    status, _, payload = server.post(ASK, {"Host": f"attacker.example:{server.port}"})  # DNS rebinding
    assert status == 421 and "Host" in _error(payload)["message"]
    assert server.get("/v1/models", {"Host": "attacker.example"})[0] == 421
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}"):
        assert server.post(ASK, {"Host": host})[0] == 200


def test_an_api_key_is_required_when_set(serve):
    server = serve(api_key="s3cret")
    status, _, payload = server.post(ASK)
    assert status == 401 and _error(payload)["code"] == "invalid_api_key"
    assert server.post(ASK, {"Authorization": "Bearer wrong"})[0] == 401
    assert server.get("/v1/models")[0] == 401
    assert server.post(ASK, {"Authorization": "Bearer s3cret"})[0] == 200
    assert "s3cret" not in server.log.getvalue()


def test_the_options_reach_the_server_and_bad_ones_are_refused_before_the_model_loads(tmp_path):
    from .conftest import run_labtax

    proc = run_labtax("serve", "--api-key", " ")
    assert proc.returncode == 2 and "--api-key is empty" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_labtax("serve", "--host", "0.0.0.0")
    assert proc.returncode == 2 and "--allow-remote" in proc.stderr and "--api-key" in proc.stderr
    help_text = run_labtax("serve", "--help").stdout
    assert all(option in help_text for option in ("--model-alias", "--api-key", "--allow-origin"))
