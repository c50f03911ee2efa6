"""Cheap checks a candidate answer must pass before a judge is asked: each failure is its own rejection
reason, costs no teacher call, and catches what small judges wave through (measured in bench/judge.py).

Every check is a pure function of the texts, so the same candidate always gets the same verdict.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import Counter
from dataclasses import dataclass

REFUSAL = re.compile(
    r"^\W*(i'?m sorry|i am sorry|sorry,|i apologi[sz]e|i can(?:no|')t (?:help|assist|provide|answer|do)|i cannot|"
    r"i am (?:not able|unable)|i'?m (?:not able|unable)|as an ai\b|as a language model|i don'?t have (?:access|the ability))",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE_END = (".", "!", "?", ")", '"', "'", "”", "’", ":", "`", "]", "*")


@dataclass(frozen=True)
class CheckFailure:
    reason: (
        str  # the rejection reason: truncated | refusal | repetition | wrong_language | restates_question | too_long
    )
    detail: str


def _words(text: str) -> list[str]:
    return [w.casefold() for w in _WORD.findall(text)]


def truncated(answer: str, finish_reason: str | None) -> CheckFailure | None:
    """Cut off by the length cap, or a last line of prose that stops mid-sentence (a short last line is a
    signature, a list item or a label, not a cut)."""
    if finish_reason == "length":
        return CheckFailure("truncated", "the reply hit the length cap")
    stripped = answer.rstrip()
    lines = stripped.splitlines()
    last = lines[-1].strip() if lines else ""
    looks_like_list_or_code = last.startswith(("-", "*", "|", "```")) or last[:2].rstrip(".").isdigit()
    words = _words(last)
    # A sentence may end without a full stop; one that ends on "the", "and", "of" or a comma was cut.
    dangling = stripped.endswith((",", ";", "-", "(")) or (words and words[-1] in DANGLING_WORDS)
    if len(words) >= 8 and not looks_like_list_or_code and not stripped.endswith(_SENTENCE_END) and dangling:
        return CheckFailure("truncated", f"the answer stops mid-sentence: '…{stripped[-40:]}'")
    return None


# A prose line that ends on one of these was cut, not finished.
DANGLING_WORDS = frozenset(
    "the a an of and to in is are was were that for on with as by or from at which than but so then if because "
    "your their its our my his her this these those".split()
)


def refusal(answer: str) -> CheckFailure | None:
    if REFUSAL.search(answer.strip()[:200]):
        return CheckFailure("refusal", f"the answer is a refusal or boilerplate: '{answer.strip()[:80]}'")
    return None


def repetition(answer: str) -> CheckFailure | None:
    """A generation loop: one 4-word phrase many times, or text that compresses far better than prose does."""
    words = _words(answer)
    if len(words) >= 12:
        grams = Counter(tuple(words[i : i + 4]) for i in range(len(words) - 3))
        phrase, count = grams.most_common(1)[0]
        if count >= 4 and count * 4 >= len(words) // 4:
            return CheckFailure("repetition", f"'{' '.join(phrase)}' repeats {count} times")
    raw = answer.encode("utf-8")
    if len(raw) >= 400 and len(zlib.compress(raw)) / len(raw) < 0.2:
        return CheckFailure("repetition", "the answer repeats itself (it compresses to under a fifth)")
    return None


def _script(text: str) -> str | None:
    """The writing system most letters of the text belong to (LATIN, CYRILLIC, CJK, ARABIC, ...)."""
    scripts: Counter[str] = Counter()
    for char in text:
        if char.isalpha():
            name = unicodedata.name(char, "")
            first = name.split(" ")[0] if name else ""
            scripts["CJK" if first in ("CJK", "HIRAGANA", "KATAKANA", "HANGUL") else first] += 1
    return scripts.most_common(1)[0][0] if scripts else None


ENGLISH_FUNCTION_WORDS = frozenset(
    "the a an of and to in is are was were it that this for on with as by be or not from at which".split()
)


# Lines that are data, not prose: JSON or markup (even malformed), table rows, list items, "key: value" pairs.
_DATA_LINE = re.compile(r"^\s*(?:[{}\[\]\"'|<`]|[-*•+]\s|\d+[.)]\s|[\w .'\"-]{1,40}:(?:\s|$))")


def _prose(text: str) -> str:
    """The text's prose lines: without code blocks and without data lines (JSON, tables, lists, key: value)."""
    text = re.sub(r"```.*?(?:```|$)", " ", text, flags=re.S)
    return "\n".join(line for line in text.splitlines() if not _DATA_LINE.match(line))


def wrong_language(question: str, answer: str) -> CheckFailure | None:
    """An answer in another writing system than the question, or (for English questions) with no English in its
    prose. Data (JSON, even malformed, tables, lists, key: value lines) is not prose: its English words are names
    and values, with few function words, so it is never judged by them."""
    q_script, a_script = _script(question), _script(answer)
    if q_script and a_script and q_script != a_script and sum(c.isalpha() for c in answer) >= 4:
        return CheckFailure("wrong_language", f"the question is in {q_script} script, the answer in {a_script}")
    q_words = _words(question)
    a_words = [w for w in _words(_prose(answer)) if w.isalpha()]  # numbers and units say nothing of the language
    english_question = sum(w in ENGLISH_FUNCTION_WORDS for w in q_words) >= max(1, len(q_words) // 8)
    if (
        english_question
        and len(a_words) >= 12
        and sum(w in ENGLISH_FUNCTION_WORDS for w in a_words) < len(a_words) * 0.04
    ):
        return CheckFailure("wrong_language", "the question is in English, the answer is not")
    return None


def restates_question(question: str, answer: str) -> CheckFailure | None:
    from rapidfuzz import fuzz

    q, a = " ".join(_words(question)), " ".join(_words(answer))
    if a and (a == q or (len(a) <= len(q) * 1.2 and fuzz.ratio(q, a) >= 90)):
        return CheckFailure("restates_question", "the answer repeats the question instead of answering it")
    return None


def too_long(answer: str, max_words: int) -> CheckFailure | None:
    n = len(_words(answer))
    return CheckFailure("too_long", f"the answer has {n} words; the budget is {max_words}") if n > max_words else None


def check_answer(question: str, answer: str, finish_reason: str | None, *, max_words: int = 600) -> CheckFailure | None:
    """The first cheap check the candidate fails, or None when it may go to the judge."""
    return (
        refusal(answer)
        or repetition(answer)
        or restates_question(question, answer)
        or wrong_language(question, answer)
        or truncated(answer, finish_reason)
        or too_long(answer, max_words)
    )
