"""LT016 document-patterns: document patterns stay inside the documents repository."""

from pathlib import PurePosixPath, PureWindowsPath

ID = "LT016"
NAME = "document-patterns"
LEVEL = "error"
SCOPE = "leaf"
SUMMARY = "document.patterns are relative globs: no absolute paths, no '..', no backslashes."
WHY = "A pattern that escapes the repository reads files it must not (and differs between machines)."
HINT = "write the pattern relative to the repository root, e.g. 'docs/*.md'"
DEFAULTS: dict = {}


def _problem(pattern: str) -> str | None:
    if "\\" in pattern:
        return "uses a backslash; use '/'"
    if pattern.startswith("/") or PureWindowsPath(pattern).is_absolute() or PureWindowsPath(pattern).drive:
        return "is an absolute path"
    if ".." in PurePosixPath(pattern).parts:
        return "contains '..'"
    return None


def check(leaf, ctx):
    document = leaf.data.get("document")
    patterns = document.get("patterns") if isinstance(document, dict) else None
    if leaf.kind != "knowledge" or not isinstance(patterns, list):
        return
    for i, pattern in enumerate(patterns):
        problem = _problem(pattern) if isinstance(pattern, str) else None
        if problem:
            yield ctx.finding(leaf.path, *leaf.pos(("document", "patterns", i)), f"pattern '{pattern}' {problem}")
