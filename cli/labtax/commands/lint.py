"""`labtax lint [PATHS...]`: the same verdict on the command line, in pre-commit and in CI."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from labtax.commands.options import profile_option, selection_options
from labtax.errors import LabtaxError
from labtax.lint.report import FORMATS


@click.command("lint")
@selection_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="auto",
    show_default=True,
    help="Output format; auto = github under GitHub Actions, else text.",
)
@profile_option
@click.option("--select", multiple=True, help="Only these rules (id or name); repeatable or comma-separated.")
@click.option("--ignore", multiple=True, help="Skip these rules (id or name); repeatable or comma-separated.")
@click.option("--strict", is_flag=True, help="Warnings fail the run too.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default=None,
    help="Also write the JSON report to this file; '-' = stdout (the report in --format then goes to stderr). A symlink or non-regular file is refused (exit 2).",
)
@click.option(
    "--yaml-rules",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A yamllint config file for the style rules (LT011), as InstructLab's --yaml-rules.",
)
@click.option(
    "--check-documents/--no-check-documents",
    default=None,
    help="Fetch knowledge documents and check the commit and patterns (LT022). Default: on when $CI is set, off otherwise (the pre-commit hook stays offline).",
)
@click.option("--offline", is_flag=True, help="Check documents only from the cache; never fetch.")
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes (default: one per CPU for 100+ files, else 1).",
)
@click.option(
    "--allow-empty",
    is_flag=True,
    help="Pass a folder with no taxonomy trees (else exit 2: a CI job in the wrong folder would pass on 0 files).",
)
def command(
    selection, fmt, profile, select, ignore, strict, output, yaml_rules, check_documents, offline, jobs, allow_empty
):
    """Check leaves (qna.yaml) against the schemas and lint rules.

    With no PATHS, the whole taxonomy; with PATHS (files or folders), just those; with --changed or
    --base REF, only the leaves changed on this branch (the same set `labtax diff` lists).
    Exit status: 0 clean, 1 errors found (or warnings, with --strict), 2 a usage or environment error (a
    bad option, no taxonomy here), 3 a bug in labtax (the message says where the traceback was saved).
    """
    from labtax.config import Overrides, load_config
    from labtax.lint.engine import lint
    from labtax.lint.report import render

    def split(values):
        return [v.strip() for value in values for v in value.split(",") if v.strip()]

    if output:
        from labtax.fileio import check_output

        check_output(output)
    root = selection.root
    if not allow_empty and not selection.explicit and selection.changes is None:
        from labtax.taxonomy.kinds import TREES

        if not any((root / tree).is_dir() for tree in TREES):
            raise LabtaxError(
                f"no taxonomy in {root}: none of {', '.join(t + '/' for t in TREES)} is there. Run labtax lint in a "
                "taxonomy repository, or pass --root or the files to check (--allow-empty passes a folder without them)"
            )
    overrides = Overrides(
        select=tuple(split(select)),
        ignore=tuple(split(ignore)),
        yaml_rules=yaml_rules.read_text(encoding="utf-8") if yaml_rules is not None else None,
        check_documents=check_documents,
        offline=offline,
    )
    config = load_config(root, profile=profile, changed=selection.changes is not None, overrides=overrides)
    result = lint(selection, config, jobs=jobs)
    # With --output -, stdout carries only the JSON (for a pipe); the usual report moves to stderr.
    human = sys.stderr if output is not None and str(output) == "-" else sys.stdout
    human.write(render(fmt, result, color=human.isatty()))
    if output:
        from labtax.fileio import write_output

        write_output(output, render("json", result))
    failed = result.errors or (strict and result.warnings)
    return 1 if failed else 0
