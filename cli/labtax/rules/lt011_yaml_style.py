"""LT011 yaml-style: yamllint's style checks, run in-process with the taxonomy's one config file."""

from __future__ import annotations

import functools
from pathlib import Path

ID = "LT011"
NAME = "yaml-style"
LEVEL = "error"
SCOPE = "leaf"
SUMMARY = "yamllint style checks, configured by the one .yamllint.yaml at the taxonomy root (labtax's built-in config if absent)."
WHY = "Consistent YAML keeps diffs reviewable; one config file read by CLI, pre-commit and CI means one verdict everywhere."
HINT = "fix the style problem yamllint names (its rule is in brackets)"
DEFAULTS = {
    "config": None,  # inline yamllint config; None: <root>/.yamllint.yaml, .yamllint.yml, .yamllint, else built-in
    "skip-version-1": False,  # InstructLab never yamllinted version-1 files
    "min-level": "warning",  # report yamllint problems at or above this level
}
CONFIG_FILES = (".yamllint.yaml", ".yamllint.yml", ".yamllint")
BUILTIN = Path(__file__).resolve().parent.parent / "data" / "yamllint.yaml"


@functools.cache
def _config(inline: str | None, root: Path):
    from yamllint.config import YamlLintConfig

    if inline is not None:
        return YamlLintConfig(content=inline)
    for name in CONFIG_FILES:
        if (root / name).is_file():
            return YamlLintConfig(file=str(root / name))
    return YamlLintConfig(file=str(BUILTIN))


def check(leaf, ctx):
    from yamllint import linter

    options = ctx.options
    if options["skip-version-1"] and leaf.version <= 1:
        return
    for problem in linter.run(leaf.text, _config(options["config"], leaf.root), leaf.path):
        if problem.level == "warning" and options["min-level"] == "error":
            continue
        if problem.rule is None and problem.desc.startswith("syntax error"):
            continue  # the loader already reported it as LT002
        level = "error" if problem.level == "error" and ctx.level == "error" else "warning"
        yield ctx.finding(leaf.path, problem.line, problem.column, f"{problem.desc} [{problem.rule}]", level=level)
