"""`labtax serve`: the embedded teacher as an OpenAI-compatible API (like InstructLab's `ilab model serve`).

Every HTTP request goes through the same batching EmbeddedTeacher, so concurrent clients share forward
passes. Loopback only by default: the API has no authentication.
"""

from __future__ import annotations

import ipaddress
import json
import signal
import socket
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import click

from labtax.errors import LabtaxError

MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_N = 16
MAX_TOKENS_LIMIT = 4096
ROLE_ALIASES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


class BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_chat_request(body: dict) -> dict:
    """The teacher's arguments from an OpenAI chat-completions body; BadRequest names the bad field."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    if body.get("stream"):
        raise BadRequest("streaming is not supported; send stream=false", "stream")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty array", "messages")
    chat = []
    for i, message in enumerate(messages):
        role = ROLE_ALIASES.get(message.get("role")) if isinstance(message, dict) else None
        if role is None:
            raise BadRequest(f"messages[{i}].role must be one of {sorted(ROLE_ALIASES)}", f"messages[{i}].role")
        chat.append({"role": role, "content": _text_content(message.get("content"), i)})
    n = _integer(body, "n", 1, 1, MAX_N)
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    max_tokens = _integer({"max_tokens": max_tokens}, "max_tokens", 256, 1, MAX_TOKENS_LIMIT)
    temperature = body.get("temperature", 0.7)
    if temperature is None:
        temperature = 0.7
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
        raise BadRequest("temperature must be a number from 0 to 2", "temperature")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise BadRequest("seed must be an integer", "seed")
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        raise BadRequest("stop must be a string or an array of strings", "stop")
    return {"messages": chat, "n": n, "max_tokens": max_tokens, "temperature": float(temperature), "seed": seed, "stop": stop}


def _text_content(content, index: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content):
        return "".join(p["text"] for p in content)
    raise BadRequest(f"messages[{index}].content must be text", f"messages[{index}].content")


def _integer(body: dict, key: str, default: int, low: int, high: int) -> int:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"{key} must be an integer from {low} to {high}", key)
    return value


def apply_stop(text: str, finish: str, stop: list[str]) -> tuple[str, str]:
    cuts = [text.find(s) for s in stop if s in text]
    return (text[: min(cuts)], "stop") if cuts else (text, finish)


def make_handler(teacher):
    from labtax.teacher.base import TeacherError

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "labtax-serve"

        def do_GET(self):
            if self.path.rstrip("/") == "/v1/models":
                model = {"id": teacher.model, "object": "model", "created": 0, "owned_by": "labtax"}
                self._send(200, {"object": "list", "data": [model]})
            else:
                self._error(404, f"no route GET {self.path}; try /v1/models or POST /v1/chat/completions", "not_found_error")

        def do_POST(self):
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._error(404, f"no route POST {self.path}; try /v1/chat/completions", "not_found_error")
                return
            try:
                request = parse_chat_request(self._read_json())
            except BadRequest as exc:
                self._error(400, str(exc), "invalid_request_error", exc.param)
                return
            stop = request.pop("stop")
            try:
                completions = teacher.submit(**request).result()
            except TeacherError as exc:
                self._error(400 if not exc.retryable else 503, str(exc), "invalid_request_error" if not exc.retryable else "server_error")
                return
            except Exception as exc:  # e.g. LabtaxError: the model could not load
                self._error(500, str(exc), "server_error")
                return
            choices = []
            for index, completion in enumerate(completions):
                text, finish = apply_stop(completion.text, completion.finish_reason, stop)
                choices.append({"index": index, "message": {"role": "assistant", "content": text}, "finish_reason": finish, "logprobs": None})
            prompt_tokens = sum(c.prompt_tokens for c in completions)
            completion_tokens = sum(c.completion_tokens for c in completions)
            self._send(200, {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": teacher.model,
                "choices": choices,
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens},
            })

        def _read_json(self):
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                raise BadRequest("a Content-Length header is required") from None
            if not 0 < length <= MAX_BODY_BYTES:
                raise BadRequest(f"the body must be 1 to {MAX_BODY_BYTES} bytes")
            try:
                return json.loads(self.rfile.read(length))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise BadRequest(f"the body is not valid JSON: {exc}") from None

        def _error(self, status, message, kind, param=None):
            self._send(status, {"error": {"message": message, "type": kind, "param": param, "code": None}})

        def _send(self, status, payload):
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args):
            sys.stderr.write(f"labtax serve: {self.address_string()} {format % args}\n")

    return Handler


def _server_class(host: str):
    if ":" not in host:
        return ThreadingHTTPServer

    class IPv6Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6

    return IPv6Server


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt  # the same clean shutdown as Ctrl-C


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback unless --allow-remote).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port (0: any free port, printed at start).")
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback --host. The API has no authentication.")
@click.option("--batch-size", type=click.IntRange(1, 256), default=None, help="Sequences per forward pass (default: the teacher's).")
def command(host, port, allow_remote, batch_size):
    """Serve the embedded SmolLM2-135M-Instruct as an OpenAI-compatible API.

    Routes: GET /v1/models, POST /v1/chat/completions (no streaming). Point any OpenAI client at
    http://HOST:PORT/v1, e.g. `OPENAI_BASE_URL=http://127.0.0.1:8000/v1 labtax generate`.
    """
    if not is_loopback(host) and not allow_remote:
        raise LabtaxError(f"refusing to serve on {host}: the API has no authentication; use 127.0.0.1, or pass --allow-remote to expose it")
    from labtax.teacher.embedded import EmbeddedTeacher

    teacher = EmbeddedTeacher(**({"batch_size": batch_size} if batch_size else {}))
    teacher.load()
    try:
        server = _server_class(host)((host, port), make_handler(teacher))
    except OSError as exc:
        teacher.close()
        raise LabtaxError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port") from None
    server.daemon_threads = True
    bound_host, bound_port = server.server_address[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    click.echo(f"labtax: serving {teacher.model} ({teacher.dtype}) at http://{shown}:{bound_port}/v1 (Ctrl-C to stop)")
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("labtax: stopped serving")
    finally:
        server.server_close()
        teacher.close()
