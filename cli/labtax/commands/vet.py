"""`labtax vet FILE.jsonl...`: generation's gate for data made anywhere."""

from __future__ import annotations

from pathlib import Path

import click

from labtax.commands.options import root_option, teacher_options
from labtax.wording import counted


@click.command("vet")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@root_option
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("vetted"),
    show_default=True,
    help="Folder for accepted.jsonl, rejected.jsonl, not_vetted.jsonl and summary.json (the call cache in .cache).",
)
@teacher_options
@click.option("--offline", is_flag=True, help="Knowledge documents only from the cache, never fetched.")
@click.option(
    "--calibrate/--no-calibrate",
    default=True,
    show_default=True,
    help="Calibrate the gate per leaf on its held-out seeds, as labtax generate does.",
)
def command(files, root, output, endpoints, offline, calibrate):
    """Vet JSONL rows with generation's gate: accepted, rejected, or not vetted (with why).

    A row is a labtax sample record, or {"leaf": "<path to qna.yaml>", "messages": [...]} with "context" for a
    grounded skill and "chunk" for knowledge. Exit 0 when every row was vetted, 1 when some could not be.
    """
    from labtax.config import find_root
    from labtax.errors import require
    from labtax.generate.vet import NOT_VETTED
    from labtax.records import jsonl
    from labtax.scale import session

    require(("rapidfuzz",), "generate", "labtax vet")
    request = session.VetRequest(
        files=tuple(files),
        root=(root or find_root()).resolve(),
        output=output,
        endpoints=endpoints,
        offline=offline,
        calibrate=calibrate,
    )
    summary = session.vet(request, click.echo)
    for path, leaf in summary["leaves"].items():
        rejected = ", ".join(f"{k} {v}" for k, v in sorted(leaf["rejected"].items())) or "none"
        click.echo(f"{path}: accepted {leaf['accepted']}, rejected: {rejected}")
    for row in jsonl.objects(output / NOT_VETTED, limit=20):
        click.echo(f"not vetted: {row.get('message')}", err=True)
    click.echo(
        f"wrote {output}/: {counted(summary['rows'], 'row')}: {summary['accepted']} accepted, "
        f"{summary['rejected']} rejected, {summary['not_vetted']} not vetted"
    )
    return 1 if summary["not_vetted"] else 0
