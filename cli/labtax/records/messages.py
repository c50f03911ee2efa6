"""The one check of a chat: a non-empty list of {role, content} with known roles and string content (and,
where it is trained or scored on, an assistant answer). Callers say what the problem means in their terms."""

from __future__ import annotations

ROLES = {"system", "user", "assistant"}
NO_LIST, BAD_MESSAGE, NO_ANSWER = "no list", "bad message", "no answer"


def problem(messages: object, *, need_answer: bool = False) -> tuple[str, object] | None:
    """None when `messages` is a well-formed chat; else (NO_LIST | BAD_MESSAGE | NO_ANSWER, the offending
    value)."""
    if not isinstance(messages, list) or not messages:
        return NO_LIST, messages
    for message in messages:
        if (
            not isinstance(message, dict)
            or message.get("role") not in ROLES
            or not isinstance(message.get("content"), str)
        ):
            return BAD_MESSAGE, message
    if need_answer and not any(m["role"] == "assistant" and m["content"].strip() for m in messages):
        return NO_ANSWER, messages
    return None
