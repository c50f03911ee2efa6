"""Text normalisation shared by duplicate checks (lint) and dedup (generate)."""

import re

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalize(text) -> str:
    """Case-, spacing- and punctuation-insensitive form of a text; '' for non-text."""
    if not isinstance(text, str):
        return ""
    return _NON_WORD.sub(" ", text.casefold()).strip()
