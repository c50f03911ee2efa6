"""`labtax new KIND PATH`: scaffold a leaf (qna.yaml + attribution.txt) that lint rejects until filled in
(taxonomy/scaffold.py), then print the next steps."""

from __future__ import annotations

from pathlib import Path

import click

from labtax.commands.options import root_option
from labtax.taxonomy.kinds import LEAF_FILE
from labtax.taxonomy.scaffold import ATTRIBUTION_FIELDS, KINDS


def folder_pattern(root: Path) -> str:
    """LT013's pattern as this taxonomy configures it, so `new` never creates a folder that lint rejects."""
    from labtax.config import load_config
    from labtax.lint.rules import rule_by_id

    return load_config(root).rule_options(rule_by_id("LT013"))["pattern"]


@click.command("new")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("path")
@click.option("--created-by", default="", help="Your GitHub username for created_by (default: left as a TODO).")
@root_option
def command(kind, path, created_by, root):
    """Scaffold a new leaf: KIND is knowledge, compositional or foundational; PATH is the folder below
    that tree, e.g. `labtax new compositional writing/poetry/haiku`.

    Writes qna.yaml (version 3, every required field, the minimum number of seed examples) an
    empty attribution.txt; lint fails until both are filled in. Never overwrites a file.
    """
    from labtax.config import find_root
    from labtax.taxonomy.scaffold import scaffold

    root = (root or find_root()).resolve()
    made = scaffold(root, kind, path, created_by, folder_pattern(root))
    folder_rel = made.folder
    click.echo(f"created {folder_rel}/{LEAF_FILE} ({made.todos} fields to fill in) and {folder_rel}/attribution.txt")
    click.echo("next steps:")
    click.echo(f'  1. fill in every "" marked TODO in {folder_rel}/{LEAF_FILE}')
    if kind == "knowledge":
        click.echo(
            "     (documents kept in this repository: repo: ./documents/<name>, commit: HEAD, patterns: ['*.md'])"
        )
    click.echo(f"  2. write {folder_rel}/attribution.txt (it is empty), one line each:")
    for name, what in ATTRIBUTION_FIELDS:
        click.echo(f"       {name}: <{what}>")
    click.echo(f"  3. labtax lint {folder_rel}        (fails until every TODO is filled in)")
    click.echo(f"  4. git add {folder_rel} && git commit   (the pre-commit hook runs the same lint)")
    if not output_ignored(root):
        click.echo(
            f"  and once per repository: keep `labtax generate`'s output out of git (its samples and call cache, "
            f"{GENERATED}/.cache/):"
        )
        click.echo(f"       echo '{GENERATED}/' >> .gitignore")


GENERATED = "generated"  # generate's default --output


def output_ignored(root: Path) -> bool:
    """Whether git ignores generate's default output folder in the repository at `root` (outside a repository,
    or without git, nothing is ignored: the advice is printed)."""
    import subprocess

    probe = f"{GENERATED}/.cache/probe"
    try:
        proc = subprocess.run(
            ["git", "check-ignore", "-q", "--no-index", probe], cwd=root, capture_output=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0
