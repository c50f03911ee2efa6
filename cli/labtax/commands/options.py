"""Options shared by several commands, declared once."""

from __future__ import annotations

from pathlib import Path

import click

root_option = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Taxonomy root (default: found from the current folder).",
)
profile_option = click.option(
    "--profile",
    type=click.Choice(["default", "instructlab"]),
    default=None,
    help="Rule set; instructlab = exactly InstructLab's CI checks.",
)


def selection_options(func):
    """Click decorator: PATHS..., --changed, --base REF, --root; the command receives `selection`.

    Every command that works on leaves uses this, so lint, generate, train and comment select alike.
    git (gitpython) is only imported when --changed or --base is given.
    """
    import functools

    @click.argument("paths", nargs=-1, type=click.Path())
    @click.option(
        "--changed",
        is_flag=True,
        help="Only the leaves changed since the merge-base with the base branch (see labtax diff).",
    )
    @click.option(
        "--base",
        "--taxonomy-base",
        metavar="REF",
        default=None,
        help="Base for --changed (implies it): branch, tag or commit; 'empty' = every leaf. Default: $GITHUB_BASE_REF, upstream, origin/main, main, master.",
    )
    @root_option
    @functools.wraps(func)
    def wrapper(*args, paths, changed, base, root, **kwargs):
        from labtax.config import find_root
        from labtax.select import select

        root = (root or find_root()).resolve()
        return func(*args, selection=select(root, paths, changed=changed, base=base), **kwargs)

    return wrapper
