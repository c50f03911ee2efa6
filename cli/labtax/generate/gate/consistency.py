"""Self-consistency: where an answer ends in a number (arithmetic, unit conversion), the teacher answers the same
question again with other seeds; when most of those answers end in another number, the candidate is rejected.

A judge reads "4.9 pounds" for 15 kg as fluent and on topic; only a second computation shows it is wrong. The
check cannot tell which of two disagreeing answers is right, and need not: disagreement means the teacher is
unsure, and an unsure answer is not one to train on.

It suits leaves whose question determines the number. Where the teacher invents figures (an earnings email),
two good answers end in different numbers: `final_number` reads only the last sentence, which for such texts
is usually a sign-off with no number, but a leaf like that should not be checked at all.
"""

from __future__ import annotations

import asyncio
import math
import re

from labtax.generate import parse
from labtax.generate.outcome import Reject

# Resample k of candidate `index` is asked with seed index + k x RESAMPLE_OFFSET: stable (a re-run replays it
# from the cache), distinct from the candidate's own call (same messages, so only the seed tells them apart)
# and from every real candidate index below it. Calibration's 1_000_000 (generate/calibrate.py) is reached only
# from the second resample on, and only ever by judge stages there: the stage is part of the cache key.
RESAMPLE_OFFSET = 500_000

# Two results agree within 1 % of the larger or 0.01: rounding to 3 significant figures or 2 decimals
# (33.07 vs 33.069 vs 33.1, 4.9 vs 4.90 vs 4.899) stays inside, while a wrong formula or a slipped
# digit (33.07 vs 4.9, 33.07 vs 3.307) is far outside. Rounding to 2 significant figures can differ by more
# (1.5 vs 1.54): such a pair is rejected, a lost sample rather than a wrong one kept.
REL_TOL = 1e-2
ABS_TOL = 1e-2

_NUMBER = re.compile(
    # Not inside a word or another number: "CO2" and "v1.2" give nothing; "x-5" gives 5, not -5.
    r"(?<![\w.,/])"
    r"(?P<minus>[-−])?"
    r"(?:"
    r"(?P<numerator>\d+)\s*/\s*(?P<denominator>\d+)(?!\s*/\s*\d)"  # 3/4; not a date like 12/25/2023
    r"|(?P<decimal>\d{1,3}(?:,\d{3})+(?!\d)(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?P<exponent>[eE][-+]?\d+)?"
    r")"
    r"(?!\d|[.,]\d)"  # all of the number, never a prefix of it: "1234th" is no 123, "1,23" no 1
    # Not an ordinal ("the 3rd step") nor a precision ("rounded to 2 decimal places").
    r"(?!st\b|nd\b|rd\b|th\b|\s*(?:decimal places?|significant (?:figures?|digits?)|d\.p\.|s\.f\.))",
    re.IGNORECASE,
)
_LIST_MARKER = re.compile(r"^\s*(?:[-*•+]\s+)?(?:\(?\d+[.)]\s+)?")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def final_number(text: str) -> float | None:
    """The number an answer ends on: the last number in its last sentence, or None where there is none.

    Only the last sentence (of the last non-empty line), because a result is stated last and a text that
    merely mentions numbers earlier is not a computation: its resamples would end elsewhere. Understood:
    1,234.5 (comma thousands), -40 and −40, .5, 6.02e23, 3/4. Not a number there: a list marker at the line's
    start ("3. Round the result."), an ordinal, a precision, digits inside a word or a version string.
    Not understood: mixed numbers (1 3/4 reads as 0.75), words ("five"), LaTeX (\\frac{3}{4} reads as 4).
    """
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return None
    last_line = _LIST_MARKER.sub("", lines[-1], count=1)
    sentences = [s for s in _SENTENCE_END.split(last_line.strip()) if s.strip()]
    if not sentences:
        return None
    value = None
    for match in _NUMBER.finditer(sentences[-1]):
        if match["numerator"] is not None:
            denominator = int(match["denominator"])
            if denominator == 0:
                continue
            number = int(match["numerator"]) / denominator
        else:
            number = float(match["decimal"].replace(",", "") + (match["exponent"] or ""))
        if math.isfinite(number):
            value = -number if match["minus"] else number
    return value


def agree(a: float, b: float) -> bool:
    """Whether two final numbers are the same result up to rounding (REL_TOL relative, or ABS_TOL near zero)."""
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


async def check_consistency(
    run,
    stage: str,
    fields: dict,
    index: int,
    examples,
    answer: str,
    candidate: dict,
    samples: int = 1,
) -> None:
    """Reject `candidate` when most of `samples` fresh answers to the same call end in another number.

    An answer with no final number is not verifiable: no call is made. A resample that fails (a Reject from the
    call or its parse) or has no final number is no evidence either way; with none left, the answer stands.
    """
    number = final_number(answer)
    if number is None or samples < 1:
        return

    async def resample(k: int) -> float | None:
        try:
            reply = await run.call(stage, fields, index + k * RESAMPLE_OFFSET, examples)
            return final_number(parse.answer(reply.text, reply.finish_reason, stage))
        except Reject:
            return None

    found = await asyncio.gather(*(resample(k) for k in range(1, samples + 1)))
    others = [n for n in found if n is not None]
    disagreeing = [n for n in others if not agree(number, n)]
    if 2 * len(disagreeing) > len(others):
        raise Reject(
            "consistency",
            "inconsistent",
            f"the answer ends in {number:g}, but {len(disagreeing)} of {len(others)} resampled answers end "
            f"elsewhere: {', '.join(f'{n:g}' for n in disagreeing)}",
            candidate,
        )
