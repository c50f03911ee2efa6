"""Record what a real llama.cpp server answers, for the default test run to replay (tests/test_llama_cpp_replay.py).

    python tests/recorded/record_llama_cpp.py --python /tmp/llama/bin/python

starts llama-cpp-python's server (the wheel in ../shared/wheels, installed in that venv) twice on 127.0.0.1 with
the SmolLM2 GGUF labtax's embedded teacher converts, once as it starts by default and once with
`--logits_all False`, sends the
requests labtax sends (chat, chat with logprobs, streaming, /v1/completions with echo for scoring given replies,
a prompt past the context window) and writes their exact JSON (the stream as its raw text) to
tests/recorded/llama_cpp.json, with the embedded scorer's values for the same conversations beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
from tests.test_llama_cpp import free_port, gguf  # noqa: E402

CONVERSATIONS = [
    [{"role": "user", "content": "What is 2 + 2?"}],
    [{"role": "user", "content": "Name a colour of the sky."}],
    [
        {"role": "system", "content": "You are a helpful, accurate assistant."},
        {"role": "user", "content": "Where does the Calvin cycle take place?"},
    ],
]
REPLIES = ["4", "The sky is blue on a clear day.", "In the stroma of the chloroplast."]
CHAT = [{"role": "user", "content": "Name a colour of the sky."}]


def post(base: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{base}{path}", json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            raw = answer.read().decode()
            status = answer.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read().decode(), exc.code
    try:
        return {"request": body, "status": status, "response": json.loads(raw)}
    except ValueError:
        return {"request": body, "status": status, "text": raw}


def serve(python: str, *extra: str):
    port = free_port()
    command = [python, "-m", "llama_cpp.server", "--model", str(gguf()), "--model_alias", "smollm2"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", *extra]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    for _ in range(600):
        try:
            urllib.request.urlopen(f"{base}/models", timeout=1)
            return proc, base
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", required=True, help="a python with llama-cpp-python[server] installed")
    parser.add_argument("--tokenizer", default=None, help="the tokenizer folder (default: `labtax teacher path`)")
    args = parser.parse_args()
    from labtax.teacher.embedded import EmbeddedTeacher
    from labtax.teacher.endpoint_scorer import ChatTemplate
    from labtax.teacher.smollm import ensure_cache

    template = ChatTemplate(Path(args.tokenizer or ensure_cache().path))
    scoring = []
    for reply in REPLIES:
        for messages in CONVERSATIONS:
            head, tail, ids = template.split(messages, reply)
            scoring.append({"messages": messages, "reply": reply, "prompt": head + tail, "tokens": len(ids)})
    teacher = EmbeddedTeacher()
    try:
        for item in scoring:
            (value,) = asyncio.run(teacher.loglikelihood([item["messages"]], item["reply"]))
            item["embedded"] = [value.total, value.end]
    finally:
        teacher.close()
    recorded: dict = {"server": "llama-cpp-python[server] 0.3.36, SmolLM2-135M-Instruct.Q4_1.gguf, --n_ctx 2048"}
    proc, base = serve(args.python)
    try:
        body = {"max_tokens": 1, "echo": True, "logprobs": 1, "temperature": 0, "model": "smollm2"}
        for item in scoring:
            item["echo"] = post(base, "/completions", {**body, "prompt": item["prompt"]})
        recorded["scoring"] = scoring
        chat = {"model": "smollm2", "messages": CHAT, "max_tokens": 12, "temperature": 0, "seed": 1, "n": 1}
        recorded["chat"] = post(base, "/chat/completions", chat)
        recorded["chat_logprobs"] = post(base, "/chat/completions", {**chat, "logprobs": True, "top_logprobs": 2})
        stream = urllib.request.Request(
            f"{base}/chat/completions",
            json.dumps({**chat, "stream": True}).encode(),
            {"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(stream, timeout=120) as answer:
            recorded["stream"] = {
                "request": {**chat, "stream": True},
                "status": answer.status,
                "text": answer.read().decode(),
            }
        long = {"role": "user", "content": "word " * 3000}
        recorded["context_exceeded"] = post(base, "/chat/completions", {**chat, "messages": [long]})
        recorded["wrong_model"] = post(base, "/chat/completions", {**chat, "model": "no-such-model"})
    finally:
        proc.kill()
        proc.wait()
    proc, base = serve(args.python, "--logits_all", "False")
    try:
        recorded["echo_without_logits_all"] = post(base, "/completions", {**body, "prompt": scoring[0]["prompt"]})
    finally:
        proc.kill()
        proc.wait()
    (HERE / "llama_cpp.json").write_text(json.dumps(recorded, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {HERE / 'llama_cpp.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
