"""Reporters render findings (plain data) as text, JSON or GitHub annotations. They know no rules."""

from __future__ import annotations

import importlib
import os

FORMATS = ("auto", "text", "json", "github")


def render(fmt: str, result, *, color: bool = False) -> str:
    if fmt == "auto":
        fmt = "github" if os.environ.get("GITHUB_ACTIONS") == "true" else "text"
    return importlib.import_module(f"labtax.report.{fmt}_report").render(result, color=color)
