"""`labtax mix RECIPE.yaml --output FILE.jsonl`: one training file from a recipe's datasets."""

from __future__ import annotations

from pathlib import Path

import click

from labtax.wording import counted


@click.command("mix")
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The JSONL file to write ('-' for stdout).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling and shuffling seed.")
def command(recipe: Path, output: Path, seed: int) -> int:
    """Mix the JSONL datasets a recipe names into one training file, as InstructLab's data mixing does.

    RECIPE is YAML: `datasets:`, a list of `path` (relative to the recipe file) and `sampling_size` (a float:
    that fraction of the file's rows, 1.0 all of them; an int: that many rows), and an optional `sys_prompt`
    (every row's system message). `labtax generate` writes one recipe per LAB phase under
    generated/phases/; copy the skills recipe beside it and add a precomputed dataset (InstructLab's community
    data: rows with `messages`) to replay it in the skills phase. labtax rows pass unchanged; other rows
    become external replay rows (kind "external", leaf ""), so the output follows labtax's record schema.
    The same recipe, files and --seed always give the same bytes. Exit status: 0 written, 2 a bad recipe or
    dataset (the message names the file and the fix).
    """
    from labtax.fileio import check_output, write_output
    from labtax.mix.recipe import EXTERNAL, jsonl, load_recipe, mix

    check_output(output)
    loaded = load_recipe(recipe)
    rows = mix(loaded, seed)
    write_output(output, jsonl(rows))
    external = sum(1 for row in rows if row["kind"] == EXTERNAL)
    click.echo(
        f"mixed {counted(len(rows), 'row')} from {counted(len(loaded.datasets), 'dataset')} into {output} ({external} external)",
        err=str(output) == "-",
    )
    return 0
