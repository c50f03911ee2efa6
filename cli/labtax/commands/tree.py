"""`labtax tree`: the taxonomy as a tree, with the number of leaves under every branch and tree
(taxonomy/tree.py)."""

from __future__ import annotations

import sys

import click

from labtax.commands.options import root_option


@click.command("tree")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Output format."
)
@click.option(
    "--depth",
    "max_depth",
    type=click.IntRange(1),
    default=None,
    help="Show branches only this many levels below each tree (counts still include everything).",
)
@root_option
def command(fmt, max_depth, root):
    """Print the taxonomy as a tree with the number of leaves under each branch and each tree.

    Branches show `name/ (N leaves)`; leaves (folders with a qna.yaml) show their name.
    """
    from labtax.config import find_root
    from labtax.taxonomy.tree import build_trees, render_json, render_text

    root = (root or find_root()).resolve()
    trees = build_trees(root)
    sys.stdout.write(render_json(root, trees) if fmt == "json" else render_text(trees, max_depth))
