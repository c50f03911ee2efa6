"""Document chunking: token-bounded, nothing lost, headings kept with their paragraph."""

from labtax.documents import chunk_text, count_tokens

from .conftest import REPO


def test_chunks_respect_the_budget_and_lose_no_text():
    text = (REPO / "documents" / "photosynthesis" / "photosynthesis.md").read_text()
    for budget in (60, 120, 400):
        chunks = chunk_text(text, budget)
        assert all(count_tokens(c) <= budget for c in chunks)
        assert " ".join(" ".join(chunks).split()) == " ".join(text.split())


def test_a_long_paragraph_is_split_at_sentences_and_headings_stick():
    text = "# Title\n\n" + " ".join(f"Sentence number {n} ends here." for n in range(40))
    chunks = chunk_text(text, 40)
    assert len(chunks) > 1 and chunks[0].startswith("# Title\n\nSentence number 0")
    assert all(c.rstrip().endswith(".") for c in chunks)
