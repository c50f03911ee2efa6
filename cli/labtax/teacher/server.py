"""The HTTP side of `labtax serve`: the embedded teacher behind OpenAI's chat-completions API (the format itself,
requests parsed and answers shaped, is teacher/chat_api.py; this module is the transport and its guards).

Every request goes through the same batching EmbeddedTeacher, so concurrent clients share forward passes.
Streaming is OpenAI's Server-Sent Events (`data: {chat.completion.chunk}` lines, then `data: [DONE]`),
fed from the decoder as each token is decoded, because that is what the `llm` CLI, LangChain's
`.stream()` and chat UIs ask for by default. A client that goes away (a failed write, or a socket closed
while it waits) cancels its generation, so an abandoned request costs no more forward passes. Parameters
the model cannot honour (JSON mode, tools) are refused by name rather than silently ignored. `logprobs` /
`top_logprobs` (non-streaming) are answered in OpenAI's format where the teacher returns them
(Completion.top_logprobs), else `"logprobs": null`, as servers without them do.
Loopback only by default, and guarded against what a web page open in the user's browser can send: a POST
must be `application/json` (no "simple" text/plain form post), the Host header must name the bound loopback
address (DNS rebinding), and another Origin is refused unless `--allow-origin` names it; `--api-key` requires
a bearer key. Hostile clients get a plain answer, never the model's time: a stop list past 4 strings or 100
characters a string is 400, a body nested too deep for the JSON parser 400, a request not complete within
30 s is closed, and past 256 open connections a new one is answered 503 (the backlog holds a burst of them).
"""

from __future__ import annotations

import concurrent.futures
import hmac
import ipaddress
import json
import queue
import select
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from labtax.errors import LabtaxError
from labtax.teacher.base import TeacherError
from labtax.teacher.chat_api import BadRequest, openai_logprobs, parse_chat_request, unknown_model, usage

MAX_BODY_BYTES = 4 * 1024 * 1024
REQUEST_SECONDS = 30.0  # a request's line, headers and body must arrive within this, from its first byte
MAX_CONNECTIONS = 256  # connections served at once (docs/cli.md); one more is answered 503
BACKLOG = 2 * MAX_CONNECTIONS  # the listen queue: a burst of connections waits there instead of being reset
POLL_SECONDS = 0.2  # how often a waiting request checks whether its client is still there


class ClientGone(Exception):
    """The client closed its connection: its generation is cancelled and nothing more is written."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_allowed(header: str | None, bound_host: str, bound_port: int) -> bool:
    """Whether a request's Host header names this server: on a loopback address, a loopback name (a page whose
    DNS name was rebound to 127.0.0.1 sends its own name); on an address the user exposed (--allow-remote), any
    name. A port, where given, is the bound one. No header (HTTP/1.0) is allowed: browsers always send one."""
    if header is None:
        return True
    header = header.strip().lower()
    if header.startswith("["):
        name, _, rest = header[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ("" if not rest else None)
    else:
        name, _, port = header.partition(":")
    if port is None or (port and port != str(bound_port)):
        return False
    return is_loopback(name) or not is_loopback(bound_host)


@dataclass(frozen=True)
class Served:
    """What a server answers with: the teacher, the names it answers to, who may ask, and the requests in flight
    (their cancel events, for shutdown)."""

    teacher: Any
    active: set[threading.Event]
    models: dict[str, str]  # every name answered -> the teacher's own model name
    key: bytes | None = None  # the bearer key every request must carry
    allow_origins: tuple[str, ...] = ()  # browser origins allowed besides the server's own ("*": any)
    request_seconds: float = REQUEST_SECONDS


def model_card(name: str) -> dict:
    return {"id": name, "object": "model", "created": 0, "owned_by": "labtax"}


class Handler(BaseHTTPRequestHandler):
    """One connection's requests, answered for `endpoint` (make_handler sets it on a subclass)."""

    protocol_version = "HTTP/1.1"
    server_version = "labtax-serve"
    endpoint: Served  # set by make_handler's subclass
    cors_origin: str | None = None  # an allowed cross-origin request's Origin, echoed in the answer

    def handle_one_request(self) -> None:
        """Wait quietly for a request's first byte (an idle keep-alive connection is closed without a line),
        then give the whole request one deadline: a request sent a byte at a time is cut there."""
        self.cors_origin = None
        try:
            if not self.rfile.peek(1):  # type: ignore[attr-defined]  # a BufferedReader
                self.close_connection = True
                return
        except OSError:  # idle past the timeout, or reset
            self.close_connection = True
            return
        self._tell("watch", self.connection, self.endpoint.request_seconds)
        try:
            super().handle_one_request()
        except ClientGone as exc:
            self.close_connection = True
            self.log_message("%s", str(exc) or "the client left before its answer")
        finally:
            self._tell("unwatch", self.connection)

    def _tell(self, name: str, *args):
        """The deadline bookkeeping of labtax's own server class; a plain ThreadingHTTPServer has none."""
        method = getattr(self.server, name, None)
        return method(*args) if method is not None else None

    def _guard(self) -> bool:
        """The checks every request passes first (Host, Origin, key); False when it was answered."""
        address: Any = self.server.server_address
        host, port = str(address[0]), int(address[1])
        if not host_allowed(self.headers.get("Host"), host, port):
            self._error(
                421,
                f"the Host header {self.headers.get('Host')!r} does not name this server; "
                f"ask http://127.0.0.1:{port}/v1 or http://localhost:{port}/v1",
                "invalid_request_error",
            )
            return False
        origin = self.headers.get("Origin")
        if origin is not None and origin != f"http://{self.headers.get('Host')}":
            if "*" not in self.endpoint.allow_origins and origin not in self.endpoint.allow_origins:
                self._error(
                    403,
                    f"requests from the web page at {origin} are refused; to let a page there use this "
                    f"server, start it with --allow-origin {origin}",
                    "invalid_request_error",
                )
                return False
            self.cors_origin = origin
        if self.command == "OPTIONS":
            return True  # a preflight carries no key
        key = self.endpoint.key
        if key is not None:
            given = self.headers.get("Authorization", "")
            scheme, _, token = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode("utf-8"), key):
                self._error(
                    401,
                    "Incorrect API key provided: this server was started with --api-key; send it as "
                    "Authorization: Bearer KEY (the openai client's api_key)",
                    "invalid_request_error",
                    None,
                    "invalid_api_key",
                )
                return False
        return True

    def do_OPTIONS(self) -> None:
        """A browser's CORS preflight: answered for an allowed origin only."""
        if not self._guard():
            return
        self.send_response(204)
        self._cors_headers()
        self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Authorization, Content-Type")
        self.send_header("Access-Control-Max-Age", "600")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        if not self._guard():
            return
        path = urlsplit(self.path).path.rstrip("/")
        if path == "/v1/models":
            self._send(200, {"object": "list", "data": [model_card(self.endpoint.teacher.model)]})
        elif path.startswith("/v1/models/"):
            name = unquote(path[len("/v1/models/") :])
            if name in self.endpoint.models:
                self._send(200, model_card(name))
            else:
                self._error(
                    404, unknown_model(name, self.endpoint.models), "invalid_request_error", "model", "model_not_found"
                )
        else:
            self._error(
                404, f"no route GET {self.path}; try /v1/models or POST /v1/chat/completions", "not_found_error"
            )

    def do_POST(self) -> None:
        if not self._guard():
            return
        if urlsplit(self.path).path.rstrip("/") != "/v1/chat/completions":
            self._error(404, f"no route POST {self.path}; try /v1/chat/completions", "not_found_error")
            return
        media = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if media != "application/json":
            self._error(
                415,
                f"the body must be sent as Content-Type: application/json (got {media or 'none'})",
                "invalid_request_error",
            )
            return
        try:
            request = parse_chat_request(self._read_json(), self.endpoint.models)
        except BadRequest as exc:
            self._error(exc.status, str(exc), "invalid_request_error", exc.param, exc.code)
            return
        finally:
            self._tell("unwatch", self.connection)  # the request is read: its generation has no deadline
        stream, include_usage = request.pop("stream"), request.pop("include_usage")
        logprobs, top_logprobs = request.pop("logprobs"), request.pop("top_logprobs")
        if logprobs:  # at least one candidate a step: the token each content entry names
            request["top_logprobs"] = max(1, top_logprobs)
        cancel = threading.Event()
        self.endpoint.active.add(cancel)
        try:
            if stream:
                self._stream(request, cancel, include_usage)
            else:
                self._complete(request, cancel, top_logprobs if logprobs else None)
        except ClientGone:
            cancel.set()
            self.close_connection = True
            self.log_message("%s", "client disconnected; its generation was cancelled")
        finally:
            self.endpoint.active.discard(cancel)

    def _complete(self, request: dict, cancel: threading.Event, top_logprobs: int | None = None) -> None:
        """`top_logprobs`: None when logprobs were not asked for, else how many candidates to list a token."""
        future = self._submit(request, cancel)
        if future is None:
            return
        while True:
            try:
                completions = future.result(timeout=POLL_SECONDS)
                break
            except concurrent.futures.TimeoutError:
                self._check_client()
            except Exception as exc:
                self._teacher_error(exc)
                return
        choices = [
            {
                "index": index,
                "message": {"role": "assistant", "content": c.text},
                "finish_reason": c.finish_reason,
                "logprobs": openai_logprobs(c.top_logprobs, top_logprobs),
            }
            for index, c in enumerate(completions)
        ]
        self._send(
            200,
            {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.endpoint.teacher.model,
                "choices": choices,
                "usage": usage(completions),
            },
        )

    def _stream(self, request: dict, cancel: threading.Event, include_usage: bool) -> None:
        """SSE as OpenAI sends it; headers wait for the first token, so an early failure is a plain error."""
        events: queue.Queue = queue.Queue()
        future = self._submit(request, cancel, lambda choice, text, finish: events.put((choice, text, finish)))
        if future is None:
            return
        future.add_done_callback(lambda _: events.put(None))  # after every on_text call: the end marker
        chunk = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.endpoint.teacher.model,
        }
        extra = {"usage": None} if include_usage else {}

        def send(choices: list, **fields) -> None:
            self._write_event({**chunk, "choices": choices, **extra, **fields})

        def begin() -> None:
            self._start_stream()
            for i in range(request["n"]):  # one choice per chunk, as OpenAI sends them
                send(
                    [
                        {
                            "index": i,
                            "delta": {"role": "assistant", "content": ""},
                            "logprobs": None,
                            "finish_reason": None,
                        }
                    ]
                )

        started = False
        while True:
            try:
                event = events.get(timeout=POLL_SECONDS)
            except queue.Empty:
                self._check_client()
                continue
            if event is None:
                break
            if not started:
                begin()
                started = True
            choice, text, finish = event
            if text:
                send([{"index": choice, "delta": {"content": text}, "logprobs": None, "finish_reason": None}])
            if finish:
                send([{"index": choice, "delta": {}, "logprobs": None, "finish_reason": finish}])
        try:
            completions = future.result()
        except Exception as exc:
            if not started:
                self._teacher_error(exc)
                return
            self._write_event({"error": {"message": str(exc), "type": "server_error", "param": None, "code": None}})
        else:
            if not started:  # every choice ended before its first token: the role chunks still come first
                begin()
                for i, c in enumerate(completions):
                    send([{"index": i, "delta": {}, "logprobs": None, "finish_reason": c.finish_reason}])
            if include_usage:
                send([], usage=usage(completions))
        self._write_chunk(b"data: [DONE]\n\n")
        self._write_chunk(b"")  # the end of the chunked body

    def _submit(
        self, request: dict, cancel: threading.Event, on_text: Callable | None = None
    ) -> concurrent.futures.Future | None:
        try:
            try:
                return self.endpoint.teacher.submit(**request, on_text=on_text, cancel=cancel)
            except TypeError as exc:  # a teacher that cannot list candidates: logprobs come back null
                if "top_logprobs" not in str(exc) or "top_logprobs" not in request:
                    raise
                request.pop("top_logprobs")
                return self.endpoint.teacher.submit(**request, on_text=on_text, cancel=cancel)
        except Exception as exc:
            self._teacher_error(exc)
            return None

    def _teacher_error(self, exc: Exception) -> None:
        if isinstance(exc, TeacherError):
            if exc.retryable:
                self._error(503, str(exc), "server_error")
            else:
                self._error(400, str(exc), "invalid_request_error")
        else:  # e.g. LabtaxError: the model could not load
            self._error(500, str(exc), "server_error")

    def _check_client(self) -> None:
        """Raise ClientGone when the peer has closed the socket (readable with nothing to read)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if readable and not self.connection.recv(1, socket.MSG_PEEK):
                raise ClientGone
        except OSError:
            raise ClientGone from None

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
        except RecursionError:
            raise BadRequest("the body is JSON nested too deeply to read") from None

    def _error(self, status: int, message: str, kind: str, param: str | None = None, code: str | None = None) -> None:
        self._send(status, {"error": {"message": message, "type": kind, "param": param, "code": code}})

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        try:
            self.send_response_only(status)
            self.send_header("Server", self.version_string())
            self.send_header("Date", self.date_time_string())
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self._cors_headers()
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # reset, or no read for the socket's timeout: one line, with the answer it missed
            raise ClientGone(f'"{self.requestline}" {status}: the client left before its answer') from None
        self.log_request(status)  # after the write, so a client that left is one line, not two

    def _cors_headers(self) -> None:
        if self.cors_origin is not None:
            self.send_header("Access-Control-Allow-Origin", self.cors_origin)
            self.send_header("Vary", "Origin")

    def _start_stream(self) -> None:
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self._cors_headers()
            self.end_headers()
        except OSError:
            raise ClientGone from None

    def _write_event(self, payload: dict) -> None:
        self._write_chunk(
            b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n\n"
        )

    def _write_chunk(self, data: bytes) -> None:
        """One HTTP/1.1 chunk, written through at once (wfile is unbuffered); a dead peer is ClientGone."""
        try:
            self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
        except OSError:
            raise ClientGone from None

    def log_message(self, format, *args) -> None:
        if self._tell("is_late", self.connection):  # the watchdog said it
            return
        sys.stderr.write(f"labtax serve: {self.address_string()} {format % args}\n")


def make_handler(
    teacher,
    active: set[threading.Event],
    *,
    aliases: tuple[str, ...] = (),
    api_key: str | None = None,
    allow_origins: tuple[str, ...] = (),
    request_seconds: float = REQUEST_SECONDS,
) -> type[BaseHTTPRequestHandler]:
    """The request handler class for `teacher`; `active` holds the cancel events of requests in flight (for
    shutdown). `aliases`: other model names answered by the model; `api_key`: the bearer key every request must
    carry; `allow_origins`: browser origins allowed besides the server's own ("*": any)."""
    served = Served(
        teacher,
        active,
        {name: teacher.model for name in (teacher.model, *aliases)},
        api_key.encode("utf-8") if api_key else None,
        allow_origins,
        request_seconds,
    )
    # each read and write of the socket times out after request_seconds (StreamRequestHandler.setup)
    return type("Handler", (Handler,), {"endpoint": served, "timeout": request_seconds})


class Server(ThreadingHTTPServer):
    """labtax serve's connections: a thread each up to max_connections, a 503 past it, and a deadline for each
    request to arrive (the watchdog)."""

    daemon_threads = True
    request_queue_size = BACKLOG
    max_connections = MAX_CONNECTIONS

    def server_activate(self) -> None:
        self._lock = threading.Lock()
        self._open = 0  # connections being served
        self._refusing = 0  # connections being answered 503
        self._deadlines: dict[socket.socket, float] = {}  # requests still being received
        self._late: set[socket.socket] = set()
        self._last_busy_line = 0.0
        super().server_activate()
        threading.Thread(target=self._watchdog, name="labtax-serve-deadlines", daemon=True).start()

    def watch(self, sock: socket.socket, seconds: float) -> None:
        with self._lock:
            self._deadlines[sock] = time.monotonic() + seconds

    def unwatch(self, sock: socket.socket) -> None:
        with self._lock:
            self._deadlines.pop(sock, None)

    def is_late(self, sock: socket.socket) -> bool:
        with self._lock:
            return sock in self._late

    def _watchdog(self) -> None:
        """Close each connection whose request is not complete by its deadline: a byte every few seconds
        passes every read's timeout, and would hold a connection (and, at the cap, the server) for ever."""
        while True:
            time.sleep(0.1)
            now = time.monotonic()
            with self._lock:
                late = [sock for sock, deadline in self._deadlines.items() if deadline <= now]
                for sock in late:
                    del self._deadlines[sock]
                    self._late.add(sock)
            for sock in late:
                try:
                    peer = sock.getpeername()[0]
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    continue
                sys.stderr.write(f"labtax serve: {peer} request not complete in time; connection closed\n")

    def process_request(self, request, client_address) -> None:
        """Serve the connection on a thread of its own, or, past the cap, answer it 503 at once (a reset
        would read as a network fault; 503 with Retry-After is what clients wait and retry on)."""
        with self._lock:
            busy = self._open >= self.max_connections
            if not busy:
                self._open += 1
            elif self._refusing < 64:
                self._refusing += 1
            else:  # a flood: no thread even to refuse it
                self.shutdown_request(request)
                return
        target = self._refuse if busy else self.process_request_thread
        threading.Thread(target=target, args=(request, client_address), daemon=True).start()

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._open -= 1
                self._late.discard(request)

    def _refuse(self, request: socket.socket, client_address) -> None:
        try:
            request.settimeout(1.0)
            received = b""
            try:  # read the request's head first: closing on unread bytes would send a reset instead
                while b"\r\n\r\n" not in received and len(received) < 65536:
                    data = request.recv(65536)
                    if not data:
                        break
                    received += data
            except OSError:
                pass
            body = json.dumps(
                {
                    "error": {
                        "message": f"labtax serve is busy: {self.max_connections} connections are open; "
                        "retry in a moment",
                        "type": "server_error",
                        "param": None,
                        "code": None,
                    }
                }
            ).encode()
            head = (
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            try:
                request.sendall(head.encode() + body)
                request.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            now = time.monotonic()
            if now - self._last_busy_line >= 10:
                self._last_busy_line = now
                sys.stderr.write(
                    f"labtax serve: busy ({self.max_connections} connections open): "
                    "answering new ones 503 (this line at most every 10 s)\n"
                )
        finally:
            with self._lock:
                self._refusing -= 1
            self.shutdown_request(request)

    def handle_error(self, request, client_address) -> None:
        """A client that vanished mid-request is a log line, not a traceback; real bugs still show one."""
        error = sys.exc_info()[1]
        if self.is_late(request):
            return  # the watchdog's line said it
        if isinstance(error, OSError):
            sys.stderr.write(f"labtax serve: {client_address[0]} connection lost: {type(error).__name__}\n")
        else:
            super().handle_error(request, client_address)


def _server_class(host: str, max_connections: int) -> type[Server]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    attributes = {"address_family": family, "max_connections": max_connections}
    return type("Server", (Server,), {**attributes, "request_queue_size": max(BACKLOG, 2 * max_connections)})


def make_server(
    teacher,
    host: str,
    port: int,
    *,
    aliases: tuple[str, ...] = (),
    api_key: str | None = None,
    allow_origins: tuple[str, ...] = (),
    request_seconds: float = REQUEST_SECONDS,
    max_connections: int = MAX_CONNECTIONS,
    active: set[threading.Event] | None = None,
) -> ThreadingHTTPServer:
    """The HTTP server for `teacher`, bound and listening (OSError when it cannot); serve_forever() runs it."""
    server_class = _server_class(host, max_connections)
    handler = make_handler(
        teacher,
        active if active is not None else set(),
        aliases=aliases,
        api_key=api_key,
        allow_origins=allow_origins,
        request_seconds=request_seconds,
    )
    return server_class((host, port), handler)


def _stop_on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt  # the same clean shutdown as Ctrl-C


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    allow_remote: bool = False,
    batch_size: int | None = None,
    aliases: tuple[str, ...] = (),
    api_key: str | None = None,
    allow_origins: tuple[str, ...] = (),
) -> int:
    """Load the model, serve until Ctrl-C or SIGTERM, return the exit status; LabtaxError when it cannot start."""
    if not is_loopback(host) and not allow_remote:
        raise LabtaxError(
            f"refusing to serve on {host}: the API is open to anyone who reaches it; use 127.0.0.1, or pass "
            "--allow-remote (with --api-key) to expose it"
        )
    if api_key is not None and not api_key.strip():
        raise LabtaxError("--api-key is empty: give the key clients must send, or leave the option out")
    from labtax.teacher.embedded import EmbeddedTeacher

    teacher = EmbeddedTeacher(batch_size=batch_size) if batch_size else EmbeddedTeacher()
    teacher.load()
    active: set[threading.Event] = set()
    try:
        server = make_server(
            teacher, host, port, aliases=aliases, api_key=api_key, allow_origins=allow_origins, active=active
        )
    except OSError as exc:
        teacher.close()
        raise LabtaxError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port") from None
    bound_host, bound_port = server.server_address[:2]
    bound_host = bound_host.decode() if isinstance(bound_host, bytes) else str(bound_host)
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    print(
        f"labtax: serving {teacher.model} ({teacher.dtype}) at http://{shown}:{bound_port}/v1 (Ctrl-C to stop)",
        flush=True,
    )
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("labtax: stopped serving", flush=True)
    finally:
        for cancel in list(active):  # no waiting for generations nobody will read
            cancel.set()
        server.server_close()
        teacher.close()
    return 0
