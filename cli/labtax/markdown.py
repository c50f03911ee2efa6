"""Markdown escaping: the only doors through which untrusted text (leaf paths, questions, documents,
model answers, judge reasons) reaches GitHub Markdown. Used by the PR comment and the training report.

- `inline()` for text inside a sentence, a heading, a table cell or a <summary>: one line, length
  capped, HTML and Markdown punctuation turned into entities (so no tag, image, link, emphasis or
  table cell can be opened or closed), and @-mentions, issue references (#123, org/repo#123,
  GH-123) and bare URLs broken with a zero-width space (GitHub resolves those on the rendered text,
  after entities are decoded).
- `code_block()` for whole texts: a fenced block whose fence is longer than any backtick run in the
  text, so nothing inside can close it; GitHub renders no HTML, links or mentions in code.
- `quote_block()` for whole prose texts (model answers, questions): a blockquote whose lines are escaped
  like `inline()` (without joining them), with a hard break at each line end, so it wraps at any width
  where a code block would clip at about 95 characters. Leading spaces become no-break spaces and a
  leading list marker an entity, so no line can open a list, heading, code block or table.
- `text_block()` picks between the two: code blocks for code-like text, the quote for everything else.

Numbers go through `num()` / `duration()`, which fall back to `inline()` for anything that is not a number;
`count()` writes "1 leaf" / "6 leaves".
"""

from __future__ import annotations

import json
import math
import re

ZWSP = "&#8203;"
CELL_CHARS = 200


# C0/C1 controls (but tab and newline), Unicode line separators, bidi overrides/isolates, BOM.
_UNSAFE_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
# Every ASCII character that means something to Markdown, GFM tables or HTML.
_ENTITIES = {ch: f"&#{ord(ch)};" for ch in "\\`*_{}[]()#+!|~$^=\"'"}
_ENTITIES.update({"&": "&amp;", "<": "&lt;", ">": "&gt;", "@": "@" + ZWSP})
_TRANSLATE = str.maketrans(_ENTITIES)


def clean(value: object) -> str:
    """Any JSON value as text: line endings normalised, invisible/control characters made visible."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False, indent=1) if isinstance(value, (dict, list)) else str(value)
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return _UNSAFE_CHARS.sub("\ufffd", value)


def cap(text: str, limit: int) -> tuple[str, int]:
    """The first `limit` characters of `text` and how many were left out."""
    if len(text) <= limit:
        return text, 0
    return text[:limit], len(text) - limit


def _escape(text: str, table: dict[int, str] = _TRANSLATE) -> str:
    """One line of text with every Markdown/HTML meaning, autolink and reference taken out."""
    out = text.translate(table)
    out = out.replace("://", ":" + ZWSP + "//")  # no bare-URL autolinks
    out = re.sub(r"(?i)\b(www)\.", r"\1" + ZWSP + ".", out)
    out = re.sub(r"&#35;(?=\d)", "&#35;" + ZWSP, out)  # no #123 / org/repo#123 references
    return re.sub(r"(?i)(gh-)(?=\d)", r"\1" + ZWSP, out)  # no GH-123 references either


def inline(value: object, limit: int = CELL_CHARS) -> str:
    """Untrusted text, safe anywhere inline: table cell, heading, <summary>, list item."""
    text = " ".join(clean(value).split())
    text, cut = cap(text, limit)
    return _escape(text) + ("…" if cut else "")


def code_block(value: object, limit: int) -> str:
    """Untrusted text as a fenced block nothing inside can close; a note under it if it was cut."""
    text, cut = cap(clean(value), limit)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    block = f"{fence}text\n{text}\n{fence}\n"
    if cut:
        block += f"<sub>… {cut:,} more characters not shown</sub>\n"
    return block


# Quotes have no meaning in Markdown text (HTML is closed off by < and & already): kept readable in prose.
_QUOTE_TRANSLATE = {k: v for k, v in _TRANSLATE.items() if chr(k) not in "\"'"}


def _quote_line(line: str) -> str:
    body = line.lstrip(" \t")
    indent = line[: len(line) - len(body)].replace("\t", "    ")
    escaped = _escape(body, _QUOTE_TRANSLATE)
    # A leading "-" or "1." would open a list, a thematic break or a setext heading: an entity cannot.
    # (Indented lines start with a no-break space, which opens nothing; "1)" has its ")" escaped already.)
    if escaped.startswith("-"):
        escaped = "&#45;" + escaped[1:]
    escaped = re.sub(r"^(\d{1,9})\.", r"\1&#46;", escaped)
    return "&#160;" * len(indent) + escaped


def quote_block(value: object, limit: int) -> str:
    """Untrusted prose as a blockquote that wraps at any width, line breaks kept; a note under it if cut."""
    text, cut = cap(clean(value), limit)
    lines = [line.rstrip() for line in text.split("\n")]
    out = []
    for number, line in enumerate(lines):
        if not line.strip():
            out.append(">")
            continue
        follows = number + 1 < len(lines) and bool(lines[number + 1].strip())
        out.append("> " + _quote_line(line) + ("\\" if follows else ""))  # a backslash at the end: a hard break
    while out and out[-1] == ">":
        out.pop()
    block = "\n".join(out or ["> _(empty)_"]) + "\n"
    if cut:  # after a blank line: a line right under the quote would continue its last paragraph
        block += f"\n<sub>… {cut:,} more characters not shown</sub>\n"
    return block


_CODE_LINE = re.compile(
    r"[;{}]\s*$|^\s*(def |class |import |from \S+ import |#include|\$ |>>> |SELECT |function |return |const |let |var )"
)


def looks_like_code(text: str) -> bool:
    """Text that needs monospace and its exact layout: fences, indented blocks, or lines that read as code."""
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return False
    if "```" in text or "~~~" in text:
        return True
    indented = sum(1 for line in lines if line.startswith(("    ", "\t")))
    codey = sum(1 for line in lines if _CODE_LINE.search(line))
    return indented >= 2 or (codey >= 2 and codey * 3 >= len(lines))


def text_block(value: object, limit: int) -> str:
    """A whole untrusted text: a code block when it reads as code, else a wrapping blockquote."""
    text = clean(value)
    return code_block(text, limit) if looks_like_code(text) else quote_block(text, limit)


def code(value: object, limit: int = CELL_CHARS) -> str:
    """A short untrusted name (a leaf path, a rule id) in monospace."""
    return f"<code>{inline(value, limit)}</code>"


def num(value: object, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return inline(value, 20)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:,.{digits}f}"
    return inline(value, 40)


def duration(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "–" if value is None else inline(value, 40)
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def size(text: str) -> int:
    """What counts against the limit: UTF-8 bytes, never less than any way GitHub counts characters."""
    return len(text.encode("utf-8"))
