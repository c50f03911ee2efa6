"""Parsers for teacher output. Small models drift (numbering, labels, repeated blocks, truncation);
whatever cannot be parsed becomes a rejection with a reason, never a silent drop."""

from __future__ import annotations

import re

from labtax.generate.outcome import Reject
from labtax.generate.seeds import CONTEXT_FLOOR, QUESTION_FLOOR, LeafShape

_LABEL = re.compile(
    r"^\s*(?:\d+[.)]\s*|[-*•]\s*|#+\s*)?(?:\*\*)?(?:new\s+)?(?:task|question|q|instruction|prompt)\s*\d*\s*(?:\*\*)?\s*[:.-]\s*",
    re.I,
)
# A later line that starts another task: a label with a colon ("Task 2:", "**Question:**").
_NEXT_LABEL = re.compile(
    r"^\s*(?:#+\s*)?(?:\*\*)?(?:new\s+)?(?:task|question|instruction|prompt)\s*\d*\s*(?:\*\*)?\s*:", re.I
)
_NUMBERED = re.compile(r"^\s*(\d+)[.)]\s+")
# A line that starts the answer: "Answer:", "Response -", "**A:**". A lone letter only with a colon: "A. trivial"
# is the first option of a multiple-choice question, not an answer.
_ANSWER_LABEL = re.compile(r"^\s*(?:\*\*)?(?:(?:answer|response)\s*(?:\*\*)?\s*[:.-]|a\s*(?:\*\*)?\s*:)\s*", re.I)
_WORD = re.compile(r"\w")


def words(text: str) -> int:
    """Words as the leaf's seeds are counted (whitespace-separated), 0 for text with no letter or digit."""
    return len(text.split()) if _WORD.search(text) else 0


def _shape(shape: LeafShape | None) -> LeafShape:
    return shape if shape is not None else LeafShape()


def question(text: str, stage: str, finish_reason: str = "stop", shape: LeafShape | None = None) -> str:
    """The task a question/task reply writes, whole: every line of it (an instruction followed by the list it is
    about), its quoting as written. A leading label ("Task:", "1.") is dropped; it ends where an answer label
    ("Answer:") or the next task of a numbered list ("2.") or a new label ("Task:") starts. At least the leaf's
    own minimum length (seeds.LeafShape); a reply cut at the length cap inside the task is truncated."""
    lines = text.strip().splitlines()
    while lines and not _strip_label(lines[0]).strip():
        lines.pop(0)  # a label on a line of its own ("Task:")
    if not lines:
        raise Reject(stage, "parse_failure", "the reply is empty", reply=text)
    numbered = _NUMBERED.match(lines[0])
    kept = [_strip_label(lines[0])]
    ended = False
    for line in lines[1:]:
        following = _NUMBERED.match(line)
        if (
            _ANSWER_LABEL.match(line)
            or _NEXT_LABEL.match(line)
            or (numbered and following and int(following.group(1)) == int(numbered.group(1)) + 1)
        ):
            ended = True
            break
        kept.append(line)
    task = "\n".join(kept).strip()
    if finish_reason == "length" and not ended:
        raise Reject(stage, "truncated", "the task hit the length cap before it ended", reply=text)
    minimum, count = _shape(shape).min_question_words, words(task)
    if count < minimum:
        raise Reject(
            stage,
            "parse_failure",
            f"no task in the reply: {count} words, fewer than {minimum} (half the leaf's shortest seed question, "
            f"{_shape(shape).shortest_question} words, at most {QUESTION_FLOOR})",
            reply=text,
        )
    return task


def _strip_label(line: str) -> str:
    line = _LABEL.sub("", line, count=1)
    return _NUMBERED.sub("", line, count=1)


def answer(text: str, finish_reason: str, stage: str) -> str:
    if finish_reason == "length":
        raise Reject(stage, "truncated", "the answer hit the length cap", reply=text)
    cleaned = _ANSWER_LABEL.sub("", text.strip(), count=1).strip()
    cleaned = _drop_repeats(cleaned)
    if len(cleaned.split()) < 1:
        raise Reject(stage, "parse_failure", "empty answer", reply=text)
    return cleaned


def context(text: str, finish_reason: str, stage: str, shape: LeafShape | None = None) -> str:
    """A grounded skill's new text. Cut at the length cap, it is kept up to its last full sentence; what is
    left must reach the leaf's own minimum (seeds.LeafShape), else it is `truncated` (cut) or a parse_failure."""
    cleaned = _drop_repeats(re.sub(r"^\s*(?:text|context)\s*:\s*", "", text.strip(), flags=re.I))
    minimum, shortest = _shape(shape).min_context_words, _shape(shape).shortest_context
    bound = f"fewer than {minimum} (half the leaf's shortest seed context, {shortest} words, at most {CONTEXT_FLOOR})"
    if finish_reason == "length":
        # Cut at the last full sentence rather than lose the context.
        end = max(cleaned.rfind(". "), cleaned.rfind(".\n"), cleaned.rfind("."))
        kept = cleaned[: end + 1] if end > 0 else ""
        if words(kept) < minimum:
            raise Reject(
                stage,
                "truncated",
                f"the context hit the length cap; up to its last full sentence it has {words(kept)} words, {bound}",
                reply=text,
            )
        return kept
    count = words(cleaned)
    if count < minimum:
        raise Reject(
            stage,
            "parse_failure",
            f"context too short: {count} {'word' if count == 1 else 'words'}, {bound}",
            reply=text,
        )
    return cleaned


def question_answer(text: str, finish_reason: str, stage: str, shape: LeafShape | None = None) -> tuple[str, str]:
    """A knowledge Q/A reply: the question whole (every line up to the answer label), then the answer up to the
    next question, if the teacher went on."""
    match = re.search(
        r"(?:question|q)\s*\d*\s*[:.]\s*(.+?)\s*(?:\n|^)\s*(?:answer\s*\d*\s*[:.]|a\s*\d*\s*:)\s*(.+)",
        text,
        re.I | re.S,
    )
    if not match:
        raise Reject(stage, "parse_failure", "reply is not in 'Question: ... Answer: ...' form", reply=text)
    q = match.group(1).strip()
    a = re.split(r"\n\s*(?:question|q)\s*\d*\s*[:.]", match.group(2), flags=re.I)[0].strip()
    if finish_reason == "length" and a == match.group(2).strip():
        raise Reject(stage, "truncated", "the answer hit the length cap", reply=text)
    minimum = _shape(shape).min_question_words
    if words(q) < minimum or not a:
        detail = "empty answer" if words(q) >= minimum else f"question of {words(q)} words, fewer than {minimum}"
        raise Reject(stage, "parse_failure", detail, reply=text)
    return q, _drop_repeats(a)


def score(text: str, stage: str, allowed=(1, 2, 3)) -> int:
    """The first number in the reply, which must be one of `allowed` ("15" is no score, "3." is 3)."""
    match = re.search(r"(?<![\d.])\d+(?![\d])", text)
    if not match or int(match.group()) not in allowed:
        scores = ", ".join(map(str, allowed))
        raise Reject(stage, "parse_failure", f"the judge's reply is not a score ({scores})", reply=text)
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
