"""`labtax serve`: the embedded teacher as an OpenAI-compatible API (like InstructLab's `ilab model serve`).

Options only; the server itself is labtax/teacher/server.py.
"""

from __future__ import annotations

import click


@click.command("serve")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback unless --allow-remote)."
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port (0: any free port, printed at start).",
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow a non-loopback --host (anyone who reaches it can use it; see --api-key).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 256),
    default=None,
    help="Sequences per forward pass (default: the teacher's).",
)
@click.option(
    "--model-alias",
    "aliases",
    multiple=True,
    metavar="NAME",
    help="Another model name to answer with the model (repeatable), for clients that always send one "
    "(e.g. gpt-4o-mini); any other name is 404 model_not_found.",
)
@click.option(
    "--api-key",
    envvar="LABTAX_SERVE_API_KEY",
    default=None,
    help="Require this bearer key on every request (or set $LABTAX_SERVE_API_KEY, which keeps it out of `ps`).",
)
@click.option(
    "--allow-origin",
    "allow_origins",
    multiple=True,
    metavar="ORIGIN",
    help="Let web pages from ORIGIN (e.g. http://localhost:3000; '*' for any) call the API (repeatable); "
    "other pages are refused.",
)
def command(
    host: str,
    port: int,
    allow_remote: bool,
    batch_size: int | None,
    aliases: tuple[str, ...],
    api_key: str | None,
    allow_origins: tuple[str, ...],
) -> int:
    """Serve the embedded SmolLM2-135M-Instruct as an OpenAI-compatible API.

    Routes: GET /v1/models, GET /v1/models/{id}, POST /v1/chat/completions (streaming too, stop strings).
    Point any OpenAI client at http://HOST:PORT/v1, e.g. `OPENAI_BASE_URL=http://127.0.0.1:8000/v1 labtax generate`.
    """
    from labtax.teacher.server import serve

    return serve(
        host,
        port,
        allow_remote=allow_remote,
        batch_size=batch_size,
        aliases=aliases,
        api_key=api_key,
        allow_origins=allow_origins,
    )
