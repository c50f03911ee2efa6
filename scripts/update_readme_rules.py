"""Regenerate the lint-rule table in README.md from the rule modules (`make rules-doc`)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from labtax.commands.rules import markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- rules:begin -->", "<!-- rules:end -->"


def updated(text: str) -> str:
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        sys.exit(f"README.md lacks the {BEGIN} ... {END} markers")
    return pattern.sub(lambda _: f"{BEGIN}\n{markdown_table()}{END}", text)


if __name__ == "__main__":
    README.write_text(updated(README.read_text(encoding="utf-8")), encoding="utf-8")
    print("README.md rule table updated")
