"""`labtax comment`: the pull-request comment with samples, rejections, lint and training verdicts.

Renders to stdout (or --output, e.g. $GITHUB_STEP_SUMMARY); with --post it creates the bot's
comment on the pull request, or updates the one an earlier push left.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from labtax.errors import LabtaxError


def _pr_from_event() -> int | None:
    """The pull-request number of the GitHub Actions event that started this job, if any."""
    path = os.environ.get("GITHUB_EVENT_PATH")
    if not path:
        return None
    try:
        event = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for key in ("pull_request", "issue"):
        number = (event.get(key) or {}).get("number") if isinstance(event, dict) else None
        if isinstance(number, int):
            return number
    number = event.get("number") if isinstance(event, dict) else None
    return number if isinstance(number, int) else None


@click.command("comment")
@click.option(
    "--summary",
    "summary_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("generated/summary.json"),
    show_default=True,
    help="summary.json written by `labtax generate` (samples are read beside it).",
)
@click.option(
    "--train-report",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="train_report.json written by `labtax train`.",
)
@click.option(
    "--lint-report",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON from `labtax lint --format json`.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default=None,
    help="Write the Markdown here (e.g. $GITHUB_STEP_SUMMARY) instead of stdout; '-' = stdout. A symlink or non-regular file is refused (exit 2).",
)
@click.option(
    "--samples",
    "samples_per_leaf",
    type=click.IntRange(0, 5),
    default=3,
    show_default=True,
    help="Accepted samples shown per leaf.",
)
@click.option(
    "--rejected",
    "rejected_per_leaf",
    type=click.IntRange(0, 5),
    default=2,
    show_default=True,
    help="Rejected candidates shown per leaf.",
)
@click.option(
    "--max-chars",
    type=click.IntRange(2000, 1_048_576),
    default=None,
    help="Size limit in bytes (default and maximum with --post: GitHub's 65,536).",
)
@click.option(
    "--post", is_flag=True, help="Post to the pull request (token from GITHUB_TOKEN, API from GITHUB_API_URL)."
)
@click.option(
    "--repo", envvar="GITHUB_REPOSITORY", default=None, help="OWNER/NAME for --post [env: GITHUB_REPOSITORY]."
)
@click.option(
    "--pr",
    type=click.IntRange(1),
    default=None,
    help="Pull-request number for --post (default: from the GitHub Actions event).",
)
@click.option(
    "--unverified",
    is_flag=True,
    help="The inputs come from a run the pull request controlled (a fork's): mark every verdict as not verified.",
)
@click.option(
    "--bot-login",
    envvar="LABTAX_BOT_LOGIN",
    default=None,
    help="With --post and a GitHub App's installation token: the app's bot account, whose comment is updated (default: github-actions[bot]) [env: LABTAX_BOT_LOGIN].",
)
def command(
    summary_path,
    train_report,
    lint_report,
    output,
    samples_per_leaf,
    rejected_per_leaf,
    max_chars,
    post,
    repo,
    pr,
    unverified,
    bot_login,
):
    """Render the pull-request comment; with --post, create or update it on GitHub.

    Exit status: 0 rendered/posted, 2 bad input or GitHub refused (the message says what to check).
    """
    from labtax import __version__
    from labtax.comment import GITHUB_COMMENT_LIMIT
    from labtax.comment.inputs import load_inputs
    from labtax.comment.render import render_comment

    if post:
        if max_chars is not None and max_chars > GITHUB_COMMENT_LIMIT:
            raise LabtaxError(
                f"--max-chars {max_chars} is above GitHub's {GITHUB_COMMENT_LIMIT:,}-character comment limit; drop it or lower it"
            )
        pr = pr or _pr_from_event()
        if not repo:
            raise LabtaxError("--post needs --repo OWNER/NAME (or GITHUB_REPOSITORY in the environment)")
        if not pr:
            raise LabtaxError("--post needs --pr N (or a pull_request event in GITHUB_EVENT_PATH)")
    inputs = load_inputs(summary_path, train_report, lint_report)
    body = render_comment(
        inputs,
        samples_per_leaf=samples_per_leaf,
        rejected_per_leaf=rejected_per_leaf,
        max_chars=max_chars or GITHUB_COMMENT_LIMIT,
        footer=f"labtax {__version__}: this comment is updated in place on every push.",
        unverified=unverified,
    )
    if output:
        from labtax.fileio import write_output

        write_output(output, body)
    elif not post:
        sys.stdout.write(body)
    if post:
        from labtax.comment.post import post_comment

        posted = post_comment(
            body,
            repo=repo,
            pr=pr,
            token=os.environ.get("GITHUB_TOKEN"),
            api_url=os.environ.get("GITHUB_API_URL") or None,
            bot_login=bot_login,
        )
        click.echo(f"labtax: {posted.action} comment {posted.comment_id} on {repo}#{pr} {posted.url}".rstrip())
