"""documents.chunk: exact slices within the budget, never inside a word."""

import itertools

from labtax.documents.chunk import chunk_spans, count_tokens


def test_spans_are_ordered_disjoint_slices_within_budget():
    text = "# Title\n\nFirst paragraph here.\n\n" + " ".join(f"Sentence {n} is here." for n in range(60)) + "\n\nLast."
    spans = chunk_spans(text, 30)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    assert all(count_tokens(text[s:e]) <= 30 for s, e in spans)
    assert text[spans[0][0] :].startswith("# Title")


def test_a_sentence_longer_than_the_budget_splits_between_words():
    text = " ".join(f"word{n}" for n in range(50))
    spans = chunk_spans(text, 10)
    assert len(spans) == 5
    for start, end in spans:
        assert (start == 0 or text[start - 1] == " ") and (end == len(text) or text[end] == " ")
