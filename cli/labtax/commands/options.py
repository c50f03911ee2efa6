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


def teacher_options(func):
    """Click decorator: the teacher and judge options generate and vet share (--concurrency, --timeout, --model,
    --base-url, --judge-model, --judge-base-url, --judge-tokenizer), declared once so both commands call the same
    endpoints alike; the command receives them as one `endpoints` (scale.session.Endpoints)."""
    import functools

    command = func

    @functools.wraps(command)
    def collected(*args, concurrency, timeout, model, base_url, judge_model, judge_base_url, judge_tokenizer, **kw):
        from labtax.config import Endpoints

        endpoints = Endpoints(concurrency, timeout, model, base_url, judge_model, judge_base_url, judge_tokenizer)
        return command(*args, endpoints=endpoints, **kw)

    func = collected
    func = click.option(
        "--judge-tokenizer",
        type=click.Path(file_okay=False, exists=True, path_type=Path),
        default=None,
        envvar="LABTAX_JUDGE_TOKENIZER",
        metavar="DIR",
        help="A local folder with the endpoint judge's tokenizer and chat template (`labtax teacher path` for SmolLM2): the gate then scores replies over the endpoint's /v1/completions (echo + logprobs), so its likelihood checks run as with the embedded judge. Checked before the run (llama.cpp needs --logits_all True). Default: $LABTAX_JUDGE_TOKENIZER.",
    )(func)
    func = click.option(
        "--judge-base-url",
        default=None,
        help="The judge's OpenAI-compatible endpoint (default: $LABTAX_JUDGE_BASE_URL, else [tool.labtax.judge] base-url). Its key, $LABTAX_JUDGE_API_KEY, else $OPENAI_API_KEY, is sent only to an endpoint named outside the repository (this option or $LABTAX_JUDGE_BASE_URL), never to one from the repository's settings.",
    )(func)
    func = click.option(
        "--judge-model",
        default=None,
        help="A separate judge model for every judge stage and the gate's calibration, so a stronger model vets a cheaper teacher's output (default: [tool.labtax.judge] model, else the teacher judges). Without --judge-base-url it is asked at the teacher's endpoint; 'embedded' names the in-process model.",
    )(func)
    func = click.option(
        "--base-url",
        default=None,
        help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL, else the embedded teacher).",
    )(func)
    func = click.option("--model", default=None, help="Teacher model name (OpenAI-compatible endpoint).")(func)
    func = click.option(
        "--timeout",
        type=click.FloatRange(0, min_open=True),
        default=None,
        metavar="SECONDS",
        help="Seconds one teacher or judge call may take in all, retries included (default: [tool.labtax.teacher] timeout, else 60), counted from its turn or from the endpoint's last answer to any call, whichever is later: a call waiting its turn at a server that answers one request at a time is not lost while the server keeps answering.",
    )(func)
    func = click.option(
        "--concurrency",
        type=click.IntRange(1, 1024),
        default=8,
        show_default=True,
        help="Teacher requests in flight at once, at most: to an endpoint measured to decode one request at a time (llama.cpp's default server), two are sent, one served and one waiting, and the run says so.",
    )(func)
    return func
