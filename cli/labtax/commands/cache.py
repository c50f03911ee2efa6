"""`labtax cache list|prune`: the document repositories fetched for knowledge leaves."""

from __future__ import annotations

import json
import time

import click


@click.group("cache")
def command():
    """Fetched knowledge-document repositories ($LABTAX_CACHE_DIR/documents), shared by every run."""


@command.command("list")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def list_(fmt):
    """List cached repositories: URL (credentials removed), size, last use."""
    from labtax.documents.fetch import cached_repositories, documents_cache, redact

    repos = cached_repositories()
    if fmt == "json":
        rows = [
            {"url": redact(r.url), "path": str(r.git_dir), "bytes": r.size_bytes, "last_used": int(r.last_used)}
            for r in repos
        ]
        click.echo(json.dumps({"cache": str(documents_cache()), "repositories": rows}, indent=2))
        return
    click.echo(f"cache: {documents_cache()}")
    for repo in repos:
        days = (time.time() - repo.last_used) / 86400
        click.echo(f"  {redact(repo.url)}  {repo.size_bytes / 1e6:.1f} MB  used {days:.1f} days ago")
    click.echo(
        f"{len(repos)} repositor{'y' if len(repos) == 1 else 'ies'}, {sum(r.size_bytes for r in repos) / 1e6:.1f} MB"
    )


@command.command("prune")
@click.option(
    "--older-than",
    "days",
    type=click.FloatRange(min=0),
    default=None,
    help="Only repositories unused for this many days (default: all).",
)
def prune(days) -> int:
    """Remove cached repositories; the next run that needs one fetches it again."""
    from labtax.documents.fetch import prune as prune_cache
    from labtax.documents.fetch import redact

    pruned = prune_cache(days)
    for link in pruned.links:
        click.echo(f"removed the link {link.name} (labtax makes none; what it pointed to is untouched)")
    for repo in pruned.removed:
        click.echo(f"removed {redact(repo.url)} ({repo.size_bytes / 1e6:.1f} MB)")
    for path, why in pruned.failed:
        click.echo(f"labtax: could not remove {path}: {why}; remove it by hand", err=True)
    removed = pruned.removed
    click.echo(f"{len(removed)} repositor{'y' if len(removed) == 1 else 'ies'} removed")
    return 2 if pruned.failed else 0
