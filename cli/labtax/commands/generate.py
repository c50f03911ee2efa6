"""`labtax generate`: synthetic data for the selected leaves, judged and filtered by a teacher."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

import click

from labtax.commands.options import selection_options, teacher_options
from labtax.errors import Interrupted
from labtax.records.layout import Layout
from labtax.records.types import SMOKE_TEST, note_with_verdict
from labtax.wording import counted

if TYPE_CHECKING:
    from labtax.generate.plan import LeafSelection
    from labtax.records.types import RunSummary
    from labtax.scale.shards import Shard


def print_plan(rows, num_samples: int, max_attempts: int) -> None:
    click.echo(
        f"plan: {counted(len(rows), 'leaf')}, {counted(num_samples, 'sample')} each, at most {max_attempts} candidates per sample"
    )
    for row in rows:
        extra = f", {row.documents}" if row.documents else ""
        stages = ", ".join(row.stages)
        click.echo(
            f"  {row.leaf.path}: {row.leaf.kind}, pipeline {row.pipeline} ({stages}), {row.calls_min}-{row.calls_max} teacher calls{extra}"
        )
    low, high = sum(r.calls_min for r in rows), sum(r.calls_max for r in rows)
    click.echo(f"expected teacher calls: {low}-{high} (fewer where cached); nothing was called (--dry-run)")


def print_skipped(chosen: LeafSelection, files: int) -> None:
    """On stderr: the lint errors that skip leaves, and which leaves they skip."""
    from labtax.lint.engine import LintResult
    from labtax.lint.report import render

    if chosen.errors:
        click.echo(render("text", LintResult(chosen.errors, files)), err=True, nl=False)
    if chosen.skipped:
        click.echo(
            f"skipping {counted(len(chosen.skipped), 'leaf')} with lint errors (fix them, then re-run; warnings never skip a leaf): {', '.join(s['leaf'] for s in chosen.skipped)}",
            err=True,
        )


def print_split(shard: Shard, whole: LeafSelection) -> None:
    paths = [leaf.path for leaf in whole.leaves]
    split = shard.split(paths)
    sizes = ", ".join(f"{i}: {len(split[i])}" for i in split)
    click.echo(f"shards of {counted(len(paths), 'leaf')} by sha256 of the leaf path: {sizes}; this is shard {shard}")


def print_summary(summary: RunSummary, output: Path) -> None:
    """Per leaf of this run its counts and note, the leaves kept from earlier runs, and the totals."""
    this_run = summary["run"]["leaves"]
    for path in this_run:
        leaf = summary["leaves"][path]
        rejected = ", ".join(f"{k} {v}" for k, v in sorted(leaf["rejected"].items())) or "none"
        click.echo(
            f"{path}: accepted {leaf['accepted']}/{leaf['requested']}, rejected: {rejected}; teacher calls {leaf['teacher_calls']}, cached {leaf['cached_calls']}, {leaf['seconds']:.1f}s"
        )
        if note := note_with_verdict(leaf):
            click.echo(f"  note: {note}")
        if shortened := leaf.get("prompts_shortened"):
            click.echo(
                f"  note: {counted(shortened, 'call')} had a prompt shortened to fit the model's context window (fewer "
                "seed examples, then a shorter document or context); serve a longer window (llama.cpp: --n_ctx, "
                "vLLM: --max-model-len) for the whole prompts"
            )
    earlier = [path for path in summary["leaves"] if path not in set(this_run)]
    if earlier:
        shown = ", ".join(earlier[:5]) + (f" and {len(earlier) - 5} more" if len(earlier) > 5 else "")
        click.echo(
            f"kept from earlier runs in {output}/ (in the bucket files and summary too; delete a leaf's folder there to drop it): {shown}"
        )
    teacher_calls = sum(summary["leaves"][path]["teacher_calls"] for path in this_run)
    cached_calls = sum(summary["leaves"][path]["cached_calls"] for path in this_run)
    totals = summary["totals"]
    held = totals.get("held_back", 0)
    kept = f"; {held} of them unvetted, held back in {Layout(output).unvetted} (--keep-unvetted trains on them)"
    click.echo(
        f"wrote {output}/: {counted(totals['accepted'], 'sample')} for {counted(len(summary['leaves']), 'leaf')} ({teacher_calls} teacher calls, {cached_calls} from cache) in {summary['run']['seconds']:.1f}s{kept if held else ''}"
    )
    if summary["run"].get("teacher") == "embedded":
        click.echo(f"note: {SMOKE_TEST}")


def _resumable(function):
    """A stop by SIGINT or SIGTERM (main.stop_signals), at any point of the run, ends with the resume hint:
    every finished call is in the cache, so the same command goes on from there."""

    @functools.wraps(function)
    def run(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except Interrupted:
            raise
        except KeyboardInterrupt:
            raise Interrupted(
                f"re-run the same command to resume: finished teacher calls are cached in {kwargs['output']}/.cache and are not asked again"
            ) from None

    return run


@click.command("generate")
@selection_options
@click.option(
    "-n",
    "--num-samples",
    type=click.IntRange(1, 100000),
    default=5,
    show_default=True,
    help="Accepted samples wanted per leaf (an exact target).",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("generated"),
    show_default=True,
    help="Output folder. One generate at a time per folder (a second one exits 2 naming the first). Bucket files and summary.json cover every leaf folder in it, earlier runs' too. A symlinked file inside it is refused, never replaced.",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(1, 100),
    default=4,
    show_default=True,
    help="Candidates tried per requested sample, at most.",
)
@teacher_options
@click.option(
    "--offline",
    is_flag=True,
    help="Knowledge documents only from the cache ($LABTAX_CACHE_DIR), never fetched; a leaf whose documents are not cached gets no samples, with a note saying so.",
)
@click.option(
    "--calibrate/--no-calibrate",
    default=True,
    show_default=True,
    help="Before vetting a leaf's samples, check that the gate tells the leaf's held-out seeds from corrupted copies (a few cached calls per leaf); when it cannot, the samples are marked unvetted.",
)
@click.option(
    "--keep-unvetted",
    is_flag=True,
    help="Put samples the gate could not vet (calibration off, failed or incomplete on their leaf) into the training files too; by default they wait in review/unvetted.jsonl with why.",
)
@click.option("--dry-run", is_flag=True, help="Print the plan (leaves, expected calls) without calling the teacher.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress: bars in a terminal, else a plain line on stderr every $LABTAX_PROGRESS_INTERVAL seconds (10).",
)
@click.option(
    "--shard",
    metavar="I/N",
    default=None,
    help="Only the leaves of shard I of N (1-based; by a sha256 of the leaf path), with a manifest in --output for `labtax merge`. See docs/scale.md.",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="ray: leaves run on Ray actors (pip install 'labtax[ray]'); --output must be a path every worker sees.",
)
@click.option(
    "--ray-address", metavar="ADDR", default=None, help="Ray cluster to join (default: start one on this machine)."
)
@click.option(
    "--ray-actors", type=click.IntRange(1, 4096), default=None, help="Ray actors (default: one per CPU of the cluster)."
)
@click.pass_context
@_resumable
def command(
    ctx,
    selection,
    num_samples,
    output,
    max_attempts,
    endpoints,
    offline,
    calibrate,
    keep_unvetted,
    dry_run,
    progress,
    **scale,
):
    """Generate synthetic data for leaves: write, judge, filter; bucket by kind.

    Re-running is incremental (cached calls are replayed, never repeated) and resumes an interrupted run.
    """
    from labtax.errors import require
    from labtax.scale import session

    require(("rapidfuzz", "tqdm"), "generate", "labtax generate")
    if scale["executor"] == "ray":
        require(("ray",), "ray", "labtax generate --executor ray")
    request = session.Request(
        output=output,
        num_samples=num_samples,
        max_attempts=max_attempts,
        endpoints=endpoints,
        offline=offline,
        calibrate=calibrate,
        keep_unvetted=keep_unvetted,
        progress=progress,
        params=ctx.params,
        **scale,
    )
    prepared = session.prepare(selection, request)
    chosen = prepared.chosen
    print_skipped(chosen, len(selection.files))
    status = 1 if chosen.skipped else 0
    if dry_run and prepared.shard:
        print_split(prepared.shard, prepared.whole)
    if not chosen.leaves and (dry_run or not prepared.shard):  # an empty shard still writes its manifest
        click.echo("no leaves to generate for" + "".join(f" ({note})" for note in selection.notes))
        return status
    if dry_run:
        print_plan(prepared.plan(), num_samples, max_attempts)
        return status
    summary = session.run(prepared, click.echo)
    if summary is not None:
        print_summary(summary, output)
    return status
