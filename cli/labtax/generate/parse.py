"""Parsers for teacher output. Small models drift (numbering, labels, repeated blocks, truncation);
whatever cannot be parsed becomes a rejection with a reason, never a silent drop."""

from __future__ import annotations

import re

from labtax.generate.outcome import Reject

_LABEL = re.compile(
    r"^\s*(?:\d+[.)]\s*|[-*•]\s*|#+\s*)?(?:\*\*)?(?:new\s+)?(?:task|question|q|instruction|prompt)\s*\d*\s*(?:\*\*)?\s*[:.-]\s*",
    re.I,
)
_NUMBERING = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+")
_ANSWER_LABEL = re.compile(r"^\s*(?:\*\*)?(?:answer|a|response)\s*(?:\*\*)?\s*[:.-]\s*", re.I)


def _clean(line: str) -> str:
    line = _LABEL.sub("", line, count=1)
    line = _NUMBERING.sub("", line, count=1)
    return line.strip().strip('"').strip()


def question(text: str, stage: str) -> str:
    """The first real line of a question/task reply."""
    for line in text.strip().splitlines():
        cleaned = _clean(line)
        if _ANSWER_LABEL.match(line):
            break
        if len(cleaned.split()) >= 3:
            return cleaned[:1000]
    raise Reject(stage, "parse_failure", "no question found in the reply", text)


def answer(text: str, finish_reason: str, stage: str) -> str:
    if finish_reason == "length":
        raise Reject(stage, "truncated", "the answer hit the length limit", text)
    cleaned = _ANSWER_LABEL.sub("", text.strip(), count=1).strip()
    cleaned = _drop_repeats(cleaned)
    if len(cleaned.split()) < 1:
        raise Reject(stage, "parse_failure", "empty answer", text)
    return cleaned


def context(text: str, finish_reason: str, stage: str) -> str:
    cleaned = _drop_repeats(re.sub(r"^\s*(?:text|context)\s*:\s*", "", text.strip(), flags=re.I))
    if finish_reason == "length":
        # Cut at the last full sentence rather than lose the context.
        end = max(cleaned.rfind(". "), cleaned.rfind(".\n"), cleaned.rfind("."))
        cleaned = cleaned[: end + 1] if end > 0 else ""
    if len(cleaned.split()) < 15:
        raise Reject(stage, "parse_failure", "context too short", text)
    return cleaned


def question_answer(text: str, finish_reason: str, stage: str) -> tuple[str, str]:
    match = re.search(
        r"(?:question|q)\s*\d*\s*[:.]\s*(.+?)\s*(?:\n|^)\s*(?:answer|a)\s*\d*\s*[:.]\s*(.+)", text, re.I | re.S
    )
    if not match:
        raise Reject(stage, "parse_failure", "reply is not in 'Question: ... Answer: ...' form", text)
    q = match.group(1).strip().splitlines()[0].strip()
    a = re.split(r"\n\s*(?:question|q)\s*\d*\s*[:.]", match.group(2), flags=re.I)[0].strip()
    if finish_reason == "length" and a == match.group(2).strip():
        raise Reject(stage, "truncated", "the answer hit the length limit", text)
    if len(q.split()) < 3 or not a:
        raise Reject(stage, "parse_failure", "question or answer empty", text)
    return q, _drop_repeats(a)


def score(text: str, stage: str, allowed=(1, 2, 3)) -> int:
    """The first number in the reply, which must be one of `allowed` ("15" is no score, "3." is 3)."""
    match = re.search(r"(?<![\d.])\d+(?![\d])", text)
    if not match or int(match.group()) not in allowed:
        raise Reject(stage, "parse_failure", f"judge reply has no score in {allowed}", text)
    return int(match.group())


def _drop_repeats(text: str) -> str:
    """Small models loop: keep each paragraph once, in order."""
    seen, kept = set(), []
    for block in re.split(r"\n\s*\n", text):
        key = " ".join(block.split()).lower()
        if key and key not in seen:
            seen.add(key)
            kept.append(block.strip())
    return "\n\n".join(kept)
