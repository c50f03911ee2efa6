"""A judge's verdict as a probability, and the per-leaf threshold that decides on it.

A score judge replies with one digit (1-3). Where the endpoint returns log-probabilities, the verdict is not
the sampled digit but the probability mass on the accepting digits at the token where the score is written:
P(score >= min_score), normalised over the score digits among the top candidates. Where there are none (the
endpoint has no logprobs, an older cache entry), the sampled digit decides, as before.

The threshold on that probability is calibrated per leaf (generate/calibrate.py): the one that best separates
the leaf's held-out seeds from corrupted copies of them (highest balanced accuracy; ties go to the threshold
nearest 0.5). Uncalibrated, it is 0.5.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

DEFAULT_THRESHOLD = 0.5


def accept_probability(
    top_logprobs: Sequence[dict[str, float]] | None, min_score: int, allowed: Sequence[int] = (1, 2, 3)
) -> float | None:
    """P(score >= min_score) from the first generated token whose top candidates include a score digit
    (the first token, for a judge that answers with the digit); None when no token offers one."""
    if not top_logprobs:
        return None
    digits = {str(d): d for d in allowed}
    for step in top_logprobs:
        mass: dict[int, float] = {}
        for token, logprob in step.items():
            score = digits.get(token.strip())
            if score is not None:
                mass[score] = mass.get(score, 0.0) + math.exp(logprob)
        total = sum(mass.values())
        if total > 0:
            return round(sum(p for score, p in mass.items() if score >= min_score) / total, 6)
    return None


def accepts(verdict: bool | float, threshold: float) -> bool:
    """A verdict is a probability (accepted at or above the threshold) or already decided (a bool: the cheap
    checks rejected it, its reply was unusable, or it came with no probability and the digit decided)."""
    return verdict if isinstance(verdict, bool) else verdict >= threshold


def balanced_accuracy(good: Sequence[bool | float], bad: Sequence[bool | float], threshold: float) -> float:
    """Mean of the good accepted and the bad rejected rates at `threshold`."""
    good_rate = sum(accepts(v, threshold) for v in good) / len(good)
    bad_rate = sum(not accepts(v, threshold) for v in bad) / len(bad)
    return (good_rate + bad_rate) / 2


def choose_threshold(
    good: Sequence[bool | float], bad: Sequence[bool | float], default: float = DEFAULT_THRESHOLD
) -> float | None:
    """The threshold that best separates the `good` verdicts from the `bad` ones: 0.5 or a midpoint between two
    neighbouring observed probabilities, the highest balanced accuracy winning, ties to the one nearest 0.5
    (or `default`, the check's own uncalibrated threshold).
    None when either side has no probability (nothing to calibrate on)."""
    good_p = [v for v in good if not isinstance(v, bool)]
    bad_p = [v for v in bad if not isinstance(v, bool)]
    if not good_p or not bad_p:
        return None
    values = sorted(set(good_p) | set(bad_p))
    candidates = {default} | {round((a + b) / 2, 6) for a, b in itertools.pairwise(values)}
    return min(sorted(candidates), key=lambda t: (-balanced_accuracy(good, bad, t), abs(t - default), t))


def roc_auc(good: Sequence[float], bad: Sequence[float]) -> float | None:
    """P(a good one scores above a bad one), ties counting half; None when one side is empty."""
    return roc_auc_pairs(itertools.product(good, bad))


def roc_auc_pairs(pairs: Iterable[tuple[float, float]]) -> float | None:
    """The same over given (good, bad) pairs (the bench pairs only those of the same leaf); None for none."""
    wins = total = 0.0
    for good, bad in pairs:
        wins += 1.0 if good > bad else 0.5 if good == bad else 0.0
        total += 1
    return round(wins / total, 6) if total else None
