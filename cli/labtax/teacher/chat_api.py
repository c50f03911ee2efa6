"""OpenAI's chat-completions format as `labtax serve` speaks it (the protocol, apart from the HTTP transport in
teacher/server.py): a request body parsed into the teacher's arguments, checked and refused by name where the
embedded model cannot honour a parameter, and the pieces of an answer (usage, logprobs) in OpenAI's shapes.
"""

from __future__ import annotations

MAX_STOP = 4  # OpenAI's limit; each stop string is checked against every streamed token on the shared decoder
MAX_STOP_CHARS = 100
MAX_N = 16
MAX_TOKENS_LIMIT = 4096
ROLE_ALIASES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
UNSUPPORTED = {  # parameter: why the embedded model cannot honour it
    "response_format": "SmolLM2-135M has no JSON or schema-constrained mode; ask for JSON in the prompt instead",
    "tools": "SmolLM2-135M cannot call tools",
    "tool_choice": "SmolLM2-135M cannot call tools",
    "functions": "SmolLM2-135M cannot call functions",
    "function_call": "SmolLM2-135M cannot call functions",
}
MAX_TOP_LOGPROBS = 20  # OpenAI's limit
NEUTRAL = {
    "response_format": ({"type": "text"},),
    "tool_choice": ("none",),
    "tools": ([],),
    "functions": ([],),
}


class BadRequest(Exception):
    """A request OpenAI would refuse (400 unless `status` says otherwise): the message and the offending parameter."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None, status: int = 400):
        super().__init__(message)
        self.param = param
        self.code = code
        self.status = status


def parse_chat_request(body: dict, models: dict[str, str] | None = None) -> dict:
    """The teacher's arguments (plus `stream`, `include_usage`) from an OpenAI chat-completions body. `models`:
    the names served (the model's own and its aliases); any other name is 404 model_not_found, as OpenAI says."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    if models is not None:
        name = body.get("model")
        if not isinstance(name, str) or not name:
            raise BadRequest("you must provide a model parameter", "model")
        if name not in models:
            raise BadRequest(unknown_model(name, models), "model", "model_not_found", status=404)
    for name, why in UNSUPPORTED.items():
        if body.get(name) is not None and body[name] not in NEUTRAL.get(name, ()):
            raise BadRequest(f"{name} is not supported by labtax serve: {why}", name, "unsupported_parameter")
    stream = body.get("stream") or False
    if not isinstance(stream, bool):
        raise BadRequest("stream must be a boolean", "stream")
    options = body.get("stream_options")
    if options is not None and not stream:
        raise BadRequest("stream_options is only allowed when stream is true", "stream_options")
    if options is not None and (
        not isinstance(options, dict) or not isinstance(options.get("include_usage", False), bool)
    ):
        raise BadRequest('stream_options must be an object like {"include_usage": true}', "stream_options")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty array", "messages")
    chat = []
    for i, message in enumerate(messages):
        role = ROLE_ALIASES.get(str(message.get("role"))) if isinstance(message, dict) else None
        if role is None:
            raise BadRequest(f"messages[{i}].role must be one of {sorted(ROLE_ALIASES)}", f"messages[{i}].role")
        chat.append({"role": role, "content": text_content(message.get("content"), i)})
    n = integer(body, "n", 1, 1, MAX_N)
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    max_tokens = integer({"max_tokens": max_tokens}, "max_tokens", 256, 1, MAX_TOKENS_LIMIT)
    temperature = body.get("temperature", 0.7)
    if temperature is None:
        temperature = 0.7
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
        raise BadRequest("temperature must be a number from 0 to 2", "temperature")
    logprobs = body.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        raise BadRequest("logprobs must be a boolean", "logprobs")
    top_logprobs = integer(body, "top_logprobs", 0, 0, MAX_TOP_LOGPROBS)
    if top_logprobs and not logprobs:
        raise BadRequest("logprobs must be true when top_logprobs is given", "top_logprobs")
    if logprobs and stream:
        raise BadRequest(
            "logprobs is not supported with stream by labtax serve; ask without stream",
            "logprobs",
            "unsupported_parameter",
        )
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise BadRequest("seed must be an integer", "seed")
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        raise BadRequest("stop must be a string or an array of strings", "stop")
    if len(stop) > MAX_STOP:
        raise BadRequest(f"stop may hold at most {MAX_STOP} strings", "stop")
    if any(len(s) > MAX_STOP_CHARS for s in stop):
        raise BadRequest(f"each stop string may be at most {MAX_STOP_CHARS} characters", "stop")
    return {
        "messages": chat,
        "n": n,
        "max_tokens": max_tokens,
        "temperature": float(temperature),
        "seed": seed,
        "stop": stop,
        "stream": stream,
        "include_usage": bool((options or {}).get("include_usage")),
        "logprobs": bool(logprobs),
        "top_logprobs": top_logprobs,
    }


def unknown_model(name: str, models: dict[str, str]) -> str:
    served = next(iter(models.values()))
    return (
        f"The model `{name}` does not exist; this server has `{served}`. A client that always sends one name can "
        f"have it served: labtax serve --model-alias {name}"
    )


def text_content(content, index: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content
    ):
        return "".join(p["text"] for p in content)
    raise BadRequest(f"messages[{index}].content must be text", f"messages[{index}].content")


def integer(body: dict, key: str, default: int, low: int, high: int) -> int:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"{key} must be an integer from {low} to {high}", key)
    return value


def usage(completions) -> dict:
    prompt_tokens = sum(c.prompt_tokens for c in completions)
    completion_tokens = sum(c.completion_tokens for c in completions)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def openai_logprobs(steps: list[dict[str, float]] | None, top: int | None) -> dict | None:
    """A choice's `logprobs` in OpenAI's format from the teacher's top candidates per generated token; None when
    not asked for (`top` None) or when the teacher gave none. Each entry's `token` is the step's most likely
    candidate: the teacher reports the top-k per step, not the token it sampled (the same at temperature 0)."""
    if top is None or not steps:
        return None

    def entry(token: str, logprob: float) -> dict:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}

    content = []
    for step in steps:
        ranked = sorted(step.items(), key=lambda item: (-item[1], item[0]))
        if not ranked:
            return None
        content.append({**entry(*ranked[0]), "top_logprobs": [entry(t, lp) for t, lp in ranked[:top]]})
    return {"content": content, "refusal": None}
