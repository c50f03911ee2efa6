"""Near-duplicate filter: word-level longest-common-subsequence similarity (ROUGE-L style), via rapidfuzz.

A sample is what it asks about what: its question, and the text it is about (a grounded skill's context, a
knowledge sample's chunk; none for freeform skills). Two samples are near-duplicates when both are alike: the
questions by ROUGE-L, the texts by how much of the shorter one the longer one holds (a seed's passage inside a
document chunk is the same material). Grounded leaves share one instruction across seeds ("Count the number of
words in the following text") and differ by context: those are distinct samples, not duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz.distance import LCSseq

from labtax.taxonomy.textnorm import normalize

DEFAULT_THRESHOLD = 0.7


@dataclass(frozen=True)
class Near:
    question: str
    context: str
    similarity: float  # the lower of the two: a duplicate is alike in both
    question_similarity: float
    context_overlap: float | None  # None: neither sample is about a text

    def describe(self) -> str:
        said = f"question ROUGE-L {self.question_similarity:.2f}"
        if self.context_overlap is not None:
            said += f", text overlap {self.context_overlap:.2f}"
        about = f" (about: {self.context[:80]})" if self.context else ""
        return f"{said} with: {self.question[:200]}{about}"


def _words(text: str) -> list[str]:
    return normalize(text).split()


class NearDuplicateFilter:
    def __init__(self, references: list[tuple[str, str]], threshold: float = DEFAULT_THRESHOLD):
        """`references`: (question, text it is about or "") pairs, e.g. the leaf's seeds."""
        self.threshold = threshold
        self._seen: list[tuple[str, str, list[str], list[str]]] = []
        for question, context in references:
            if question:
                self.add(question, context)

    def match(self, question: str, context: str = "") -> Near | None:
        """The most similar earlier sample if it is at or above the threshold in both question and text."""
        words, context_words = _words(question), _words(context)
        best = None
        for other, other_context, other_words, other_context_words in self._seen:
            q = LCSseq.normalized_similarity(words, other_words)
            if q < self.threshold:
                continue
            overlap = _overlap(context_words, other_context_words)
            similarity = q if overlap is None else min(q, overlap)
            if similarity >= self.threshold and (best is None or similarity > best.similarity):
                best = Near(other, other_context, similarity, q, overlap)
        return best

    def add(self, question: str, context: str = "") -> None:
        self._seen.append((question, context, _words(question), _words(context)))


def _overlap(a: list[str], b: list[str]) -> float | None:
    """How much of the shorter text the longer one holds, in order (LCS / shorter length); None when neither is
    a text, 0 when only one is."""
    if not a and not b:
        return None
    if not a or not b:
        return 0.0
    return LCSseq.similarity(a, b) / min(len(a), len(b))
