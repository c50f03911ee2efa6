"""Near-duplicate filter: word-level longest-common-subsequence similarity (ROUGE-L style), via rapidfuzz."""

from __future__ import annotations

from rapidfuzz.distance import LCSseq

from labtax.taxonomy.textnorm import normalize

DEFAULT_THRESHOLD = 0.7


class NearDuplicateFilter:
    def __init__(self, references: list[str], threshold: float = DEFAULT_THRESHOLD):
        self.threshold = threshold
        self._seen: list[tuple[str, list[str]]] = [(text, normalize(text).split()) for text in references if text]

    def match(self, text: str) -> tuple[str, float] | None:
        """The most similar earlier text if it is at or above the threshold."""
        words = normalize(text).split()
        best = None
        for other, other_words in self._seen:
            similarity = LCSseq.normalized_similarity(words, other_words)
            if similarity >= self.threshold and (best is None or similarity > best[1]):
                best = (other, similarity)
        return best

    def add(self, text: str) -> None:
        self._seen.append((text, normalize(text).split()))
