"""Token-bounded chunks that are exact slices of the document: paragraphs packed together, a heading kept
with the paragraph after it, a long paragraph split at sentences and a long sentence between words
(never inside one). Being slices, chunks lose no text and have stable byte ranges."""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\w+|[^\w\s]")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"\S+")

Span = tuple[int, int]  # [start, end) in characters


def count_tokens(text: str) -> int:
    """Word-piece estimate (words and punctuation): close to BPE counts for English prose, and free."""
    return len(_TOKEN.findall(text))


def _pieces(text: str, start: int, end: int, pattern: re.Pattern) -> list[Span]:
    """[start, end) cut at the gaps `pattern` matches (the gaps belong to neither side)."""
    spans, at = [], start
    for match in pattern.finditer(text, start, end):
        if match.start() > at:
            spans.append((at, match.start()))
        at = match.end()
    if at < end:
        spans.append((at, end))
    return spans


def _is_heading(text: str, span: Span) -> bool:
    block = text[span[0] : span[1]]
    return block.lstrip().startswith("#") and "\n" not in block.strip()


def _blocks(text: str) -> list[Span]:
    """Paragraphs; a heading-only paragraph sticks to the one after it."""
    blocks, pending = [], None
    for span in _pieces(text, 0, len(text), _PARAGRAPH_BREAK):
        if not text[span[0] : span[1]].strip():
            continue
        if _is_heading(text, span):
            pending = span[0] if pending is None else pending
            continue
        blocks.append((pending if pending is not None else span[0], span[1]))
        pending = None
    if pending is not None:
        blocks.append((pending, len(text.rstrip())))
    return blocks


def _fit(text: str, span: Span, max_tokens: int) -> list[Span]:
    """A block within budget as is; else its sentences; a sentence still too long, its words."""
    if count_tokens(text[span[0] : span[1]]) <= max_tokens:
        return [span]
    out: list[Span] = []
    for sentence in _pieces(text, *span, _SENTENCE_END):
        if count_tokens(text[sentence[0] : sentence[1]]) <= max_tokens:
            out.append(sentence)
        else:
            out += [m.span() for m in _WORD.finditer(text, *sentence)]
    return out


def _pack(text: str, spans: list[Span], max_tokens: int) -> list[Span]:
    """Greedily merge consecutive spans while the merged slice stays within max_tokens."""
    out: list[Span] = []
    current, tokens = None, 0
    for span in spans:
        size = count_tokens(text[span[0] : span[1]])
        if current is not None and tokens + size <= max_tokens:
            current, tokens = (current[0], span[1]), tokens + size  # tokens never span whitespace: sums add up
        else:
            if current is not None:
                out.append(current)
            current, tokens = span, size
    if current is not None:
        out.append(current)
    return out


def chunk_spans(text: str, max_tokens: int) -> list[Span]:
    pieces = [piece for block in _blocks(text) for piece in _fit(text, block, max_tokens)]
    return _pack(text, pieces, max_tokens)


def chunk_text(text: str, max_tokens: int) -> list[str]:
    return [text[start:end] for start, end in chunk_spans(text, max_tokens)]
