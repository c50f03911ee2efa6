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
    # the rejection reason: truncated | refusal | repetition | wrong_language | restates_question | too_long |
    # prompt_leak | copies_input | non_answer | wrong_arithmetic
    reason: str
    detail: str


def _words(text: str) -> list[str]:
    return [w.casefold() for w in _WORD.findall(text)]


def truncated(answer: str, finish_reason: str | None, what: str = "answer") -> CheckFailure | None:
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
        return CheckFailure("truncated", f"the {what} stops mid-sentence: '…{stripped[-40:]}'")
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


# --------------------------------------------------------------------------- the teacher's own failures
# Measured on what the embedded teacher really writes (bench/graded): its prompt's wording in the task, an
# answer that hands the input back, answers that say nothing, sums that do not add up, tasks cut mid-sentence.

_LEAK_WORDS = 4  # a run of this many of the prompt's own words in a candidate is the prompt, not the task


def _grams(words: list[str], n: int = _LEAK_WORDS) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def leak_phrases(prompt_texts: list[str], own_texts: list[str]) -> frozenset[tuple[str, ...]]:
    """The word runs of the generation prompts' fixed wording (placeholders cut out) that the leaf's own
    material (seeds, task description, documents) does not also contain: those are the prompt's, never the
    leaf's, so a candidate that holds one repeated its instructions."""
    fixed: set[tuple[str, ...]] = set()
    for text in prompt_texts:
        for piece in re.split(r"\{[a-z_]+\}", text):
            fixed |= _grams(_words(piece))
    own: set[tuple[str, ...]] = set()
    for text in own_texts:
        own |= _grams(_words(text))
    return frozenset(fixed - own)


def prompt_leak(text: str, phrases: frozenset[tuple[str, ...]], what: str = "question") -> CheckFailure | None:
    found = _grams(_words(text)) & phrases
    if found:
        return CheckFailure("prompt_leak", f"the {what} repeats labtax's own prompt: '{' '.join(min(found))}'")
    return None


def _flat(text: str) -> str:
    return " ".join(text.casefold().split()).strip(" .!?\"'“”")


def copies_input(question: str, answer: str, context: str = "") -> CheckFailure | None:
    """An answer that is the task's own input handed back unchanged: all of it, character for character (case
    and spacing aside), inside the question or the context. A rewrite that changes anything (a date's format, a
    heading's level) is not a copy; on people's seeds a word-level overlap rule flagged such rewrites."""
    flat = _flat(answer)
    if len(flat.split()) < 8:
        return None
    for source in (question, context):
        if flat in _flat(source):
            return CheckFailure("copies_input", f"the answer is the input, unchanged: '{answer.strip()[:80]}'")
    return None


# An answer made only of these says nothing: it talks about answering ("Yes, I can.", "Sure, here it is.").
_FILLER = frozenset(
    "yes no sure certainly of course ok okay here is it this that i we you can could will would do does did "
    "the a an answer task following below as requested happy to help".split()
)
_SELF = frozenset("i we sure certainly here happy".split())


def non_answer(answer: str) -> CheckFailure | None:
    """An answer that only talks about answering ("Yes, I can.", "Sure, here it is:"). A bare "Yes." to a
    yes/no question is an answer; a word picked from the question (a class, a choice) is too: on people's
    seeds a rule that flagged answers without a word of their own flagged those."""
    words = _words(answer)
    if words and len(words) <= 8 and all(w in _FILLER for w in words) and any(w in _SELF for w in words):
        return CheckFailure("non_answer", f"the answer only talks about answering: '{answer.strip()[:80]}'")
    return None


_NUMBER = r"\$?\d[\d,]*(?:\.\d+)?%?"
_OPERATOR = r"[-+*/×x÷·]"
_EQUATION = re.compile(
    rf"(?<![\w.^/-])(\(?\s*{_NUMBER}(?:\s*\)?\s*{_OPERATOR}\s*\(?\s*{_NUMBER}\s*\)?)+)\s*(=|≈)\s*(-?{_NUMBER})(?![\w.]*\d)(?!\s*{_OPERATOR}\s*\(?\s*\$?\d)"
)


def _value(number: str) -> float:
    return float(number.replace("$", "").replace(",", "").replace("%", ""))


def _evaluate(expression: str) -> float | None:
    """An arithmetic expression of numbers and + - × ÷ and parentheses, evaluated; None if it is anything else."""
    import ast
    import operator

    text = re.sub(r"(?<=\d)\s*x\s*(?=[\d($])", "*", expression.strip())
    text = text.replace("×", "*").replace("÷", "/").replace("·", "*")
    text = re.sub(_NUMBER, lambda m: repr(_value(m.group(0))), text)
    ops = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}

    def walk(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return ops[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        raise ValueError(node)

    try:
        return walk(ast.parse(text, mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError, RecursionError):
        return None


def wrong_arithmetic(answer: str) -> CheckFailure | None:
    """An equation of plain numbers in the answer that does not hold ("2 x $1.05 = $2"): the answer's own
    working is wrong, whatever its conclusion. Rounding to the digits written is allowed, more with '≈'."""
    for match in _EQUATION.finditer(answer):
        expression, sign, result = match.groups()
        if "%" in expression or "%" in result:
            continue  # "20% x 50 = 10" reads percent two ways
        value = _evaluate(expression)
        if value is None:
            continue
        stated = _value(result)
        decimals = len(result.split(".")[1].rstrip("%")) if "." in result else 0
        slack = max(0.5 * 10**-decimals, abs(value) * (0.02 if sign == "≈" else 0.005))
        if abs(value - stated) > slack:
            return CheckFailure("wrong_arithmetic", f"'{match.group(0).strip()}' does not hold (it is {value:g})")
    return None


@dataclass(frozen=True)
class LeafChecks:
    """What the checks need to know of a leaf, found once from its prompts and seeds (LeafJob.checks):
    the prompt's own wording (`phrases`), and whether its seeds answer some input unchanged."""

    phrases: frozenset[tuple[str, ...]] = frozenset()
    copies_allowed: bool = False

    @classmethod
    def of(cls, prompt_texts: list[str], own_texts: list[str], seeds: list[dict]) -> LeafChecks:
        copies = any(
            copies_input(str(s.get("question", "")), str(s.get("answer", "")), str(s.get("context") or ""))
            for s in seeds
        )
        return cls(leak_phrases(prompt_texts, own_texts), copies)


ANY_LEAF = LeafChecks()  # nothing known of the leaf: no prompt wording to look for, no copy allowed


def check_question(question: str, leaf: LeafChecks = ANY_LEAF, context: str = "") -> CheckFailure | None:
    """The first cheap check a written task (and its generated context) fails before any judge is asked, or None."""
    return (
        prompt_leak(question, leaf.phrases)
        or prompt_leak(context, leaf.phrases, "context")
        or truncated(question, "stop", "task")
        or unclosed_quote(question)
    )


def unclosed_quote(question: str) -> CheckFailure | None:
    """A task whose quoted input opens and never closes, running to the end without a sentence's end: it was
    cut before the text it quotes ended. (A stray quote mark inside a finished question is a typo, not a cut.)"""
    text = question.rstrip()
    last = max(text.rfind('"'), text.rfind("“"))
    opening = last >= 0 and (text[last] == "“" or text[: last + 1].count('"') % 2 == 1)
    if opening and "”" not in text[last:] and len(_words(text[last:])) >= 3 and not text.endswith(_SENTENCE_END):
        return CheckFailure("truncated", "the task's quoted text never closes: it was cut before its input ended")
    return None


def check_answer(
    question: str,
    answer: str,
    finish_reason: str | None,
    *,
    max_words: int = 600,
    context: str = "",
    leaf: LeafChecks = ANY_LEAF,
) -> CheckFailure | None:
    """The first cheap check the candidate fails, or None when it may go to the judge. `context`: the input the
    answer must not merely hand back; `leaf`: what the checks know of the leaf (LeafChecks)."""
    return (
        refusal(answer)
        or repetition(answer)
        or restates_question(question, answer)
        or non_answer(answer)
        or (None if leaf.copies_allowed else copies_input(question, answer, context))
        or prompt_leak(answer, leaf.phrases, "answer")
        or wrong_language(question, answer)
        or truncated(answer, finish_reason)
        or wrong_arithmetic(answer)
        or too_long(answer, max_words)
    )
