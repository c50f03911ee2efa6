"""Markdown escaping: the only doors through which untrusted text (leaf paths, questions, documents,
model answers, judge reasons) reaches GitHub Markdown. Used by the PR comment and the training report.

- `inline()` for text inside a sentence, a heading, a table cell or a <summary>: one line, length
  capped, HTML and Markdown punctuation turned into entities (so no tag, image, link, emphasis or
  table cell can be opened or closed), and @-mentions, issue references (#123, org/repo#123,
  GH-123) and bare URLs broken with a zero-width space (GitHub resolves those on the rendered text,
  after entities are decoded).
- `code_block()` for whole texts: a fenced block whose fence is longer than any backtick run in the
  text, so nothing inside can close it; GitHub renders no HTML, links or mentions in code.

Numbers go through `num()` / `duration()`, which fall back to `inline()` for anything that is not a number.
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


def clean(value) -> str:
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


def inline(value, limit: int = CELL_CHARS) -> str:
    """Untrusted text, safe anywhere inline: table cell, heading, <summary>, list item."""
    text = " ".join(clean(value).split())
    text, cut = cap(text, limit)
    out = text.translate(_TRANSLATE)
    out = out.replace("://", ":" + ZWSP + "//")  # no bare-URL autolinks
    out = re.sub(r"(?i)\b(www)\.", r"\1" + ZWSP + ".", out)
    out = re.sub(r"&#35;(?=\d)", "&#35;" + ZWSP, out)  # no #123 / org/repo#123 references
    out = re.sub(r"(?i)(gh-)(?=\d)", r"\1" + ZWSP, out)  # no GH-123 references either
    return out + ("…" if cut else "")


def code_block(value, limit: int) -> str:
    """Untrusted text as a fenced block nothing inside can close; a note under it if it was cut."""
    text, cut = cap(clean(value), limit)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    block = f"{fence}text\n{text}\n{fence}\n"
    if cut:
        block += f"<sub>… {cut:,} more characters not shown</sub>\n"
    return block


def code(value, limit: int = CELL_CHARS) -> str:
    """A short untrusted name (a leaf path, a rule id) in monospace."""
    return f"<code>{inline(value, limit)}</code>"


def num(value, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return inline(value, 20)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:,.{digits}f}"
    return inline(value, 40)


def duration(value) -> str:
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
