"""LT011 yaml-style: yamllint's style checks, run in-process with the taxonomy's one config file.

Only yamllint's style (cosmetic) pass runs: its own syntax pass re-parses the whole file in pure Python,
and a leaf only reaches this rule after the loader parsed it (syntax problems are LT002's), so it would
find nothing and it costs about a third of the rule's time. The style pass reads its tokens with libyaml
(labtax/yamllint_libyaml.py), which halves the rest.
"""

from __future__ import annotations

import functools
import re
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
    # Style never breaks generation, so by default every yamllint problem is a warning (advice; --strict
    # fails on it). "yamllint": yamllint's errors are errors, as InstructLab's CI counts them.
    "errors": "none",
    # Read the file as InstructLab does (Python text mode): CRLF line endings become LF before yamllint.
    "universal-newlines": False,
}
CONFIG_FILES = (".yamllint.yaml", ".yamllint.yml", ".yamllint")
BUILTIN = Path(__file__).resolve().parent.parent / "data" / "yamllint.yaml"
DISABLE_FILE = re.compile(r"^#\s*yamllint disable-file\s*$")  # yamllint's own file-level switch


@functools.cache
def _config(inline: str | None, root: Path, source: str | None = None):
    from yamllint.config import YamlLintConfig, YamlLintConfigError

    from labtax.errors import LabtaxError
    from labtax.taxonomy.files import read_bytes
    from labtax.taxonomy.problems import LoadProblem

    if inline is not None:  # from the repository's settings like .yamllint.yaml: the same guard
        name = f"[tool.labtax.rules.{ID}] config" + (f" in {Path(source).name}" if source else "")
        if not isinstance(inline, str):
            raise LabtaxError(f"{name} is a {type(inline).__name__}; write the yamllint configuration as a YAML string")
        try:
            return YamlLintConfig(content=_contained(inline, name))
        except YamlLintConfigError as exc:
            raise LabtaxError(f"{name}: {exc}; fix the yamllint configuration") from None
    for name in CONFIG_FILES:
        path = root / name
        if not (path.exists() or path.is_symlink()):
            continue
        try:  # the config comes with the repository: read it through the same guard as the leaves
            text = read_bytes(path, root, 1024 * 1024).decode("utf-8", errors="replace")
            return YamlLintConfig(content=_contained(text, name))
        except LoadProblem as problem:
            raise LabtaxError(f"cannot read {name}: {problem.message}") from None
        except YamlLintConfigError as exc:
            raise LabtaxError(f"{name}: {exc}; fix the yamllint configuration") from None
    return YamlLintConfig(file=str(BUILTIN))


def _contained(text: str, name: str) -> str:
    """The repository's yamllint config, refused where yamllint would read another file: `extends` with a
    path and `ignore-from-file` name files that yamllint opens from the working folder, i.e. possibly outside
    the repository (a pull request's config is read in CI). yamllint's built-in bases stay allowed."""
    import yaml
    import yamllint.config

    from labtax.errors import LabtaxError

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return text  # yamllint reports it, with its own message
    if not isinstance(data, dict):
        return text
    builtin = sorted(p.stem for p in (Path(yamllint.config.__file__).parent / "conf").glob("*.yaml"))
    base = data.get("extends")
    if base is not None and base not in builtin:
        raise LabtaxError(
            f"{name}: extends: {base!r} is not one of yamllint's built-in configs ({', '.join(builtin)}); a taxonomy's "
            f"config may not name another file (yamllint would read it from outside the repository): copy its rules into it"
        )
    if "ignore-from-file" in data:
        raise LabtaxError(
            f"{name}: ignore-from-file names files yamllint would read from outside the repository; list the patterns under `ignore:` instead"
        )
    return text


def style_problems(text: str, conf, path: str):
    """yamllint.linter.run without its syntax pass: same file filters, same directives, same problems."""
    from labtax.lint.yamllint_libyaml import cosmetic_problems

    if conf.is_file_ignored(path) or DISABLE_FILE.match(text.split("\n", 1)[0]):
        return ()
    return cosmetic_problems(text, conf, path)


def _lines_inside_scalars(text: str) -> set[int]:
    """Lines (1-based) inside multi-line scalars after their first: blank lines there are content, and
    yamllint's empty-lines advice would change the text."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    inside: set[int] = set()
    try:
        for token in yaml.scan(text, Loader=loader):
            if isinstance(token, yaml.ScalarToken) and token.end_mark.line > token.start_mark.line:
                inside.update(range(token.start_mark.line + 2, token.end_mark.line + 2))
    except yaml.YAMLError:
        pass
    return inside


def check(leaf, ctx):
    options = ctx.options
    if options["skip-version-1"] and leaf.version <= 1:
        return
    inside = None
    text = leaf.text.replace("\r\n", "\n") if options["universal-newlines"] else leaf.text
    conf = _config(options["config"], leaf.root, getattr(ctx, "source", None))
    for problem in style_problems(text, conf, leaf.path):
        if problem.rule == "empty-lines":
            inside = _lines_inside_scalars(text) if inside is None else inside
            if problem.line in inside:
                continue
        if problem.level == "warning" and options["min-level"] == "error":
            continue
        level = (
            "error"
            if problem.level == "error" and ctx.level == "error" and options["errors"] == "yamllint"
            else "warning"
        )
        yield ctx.finding(leaf.path, problem.line, problem.column, f"{problem.desc} [{problem.rule}]", level=level)
