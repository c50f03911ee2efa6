"""`labtax merge OUT SHARD_DIR...`: the output folders of `labtax generate --shard I/N` runs -> one folder."""

from __future__ import annotations

from pathlib import Path

import click

from labtax.wording import counted


@click.command("merge")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.argument("shard_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
def command(out: Path, shard_dirs: tuple[Path, ...]) -> int:
    """Merge shard outputs into OUT: leaf folders and call caches unioned, bucket files, rejected, held-out
    seeds and summary.json rebuilt, as one run over all the leaves would write them.

    Every shard 1..N must be present and complete; otherwise nothing is written, and the missing or
    unfinished shards are listed with the commands that produce them (exit 1). See docs/scale.md.
    """
    from labtax.errors import require

    require(("rapidfuzz",), "generate", "labtax merge")
    from labtax.scale.merge import merge

    result = merge(out, list(shard_dirs))
    totals = result.summary["totals"]
    click.echo(
        f"merged {counted(result.shards, 'shard')} into {out}/: {counted(result.leaves, 'leaf')}, {counted(totals['accepted'], 'sample')}; "
        f"call cache: {result.cache_copied} entries copied, {result.cache_present} already there"
    )
    return 0
