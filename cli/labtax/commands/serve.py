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
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback --host. The API has no authentication.")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 256),
    default=None,
    help="Sequences per forward pass (default: the teacher's).",
)
def command(host: str, port: int, allow_remote: bool, batch_size: int | None) -> int:
    """Serve the embedded SmolLM2-135M-Instruct as an OpenAI-compatible API.

    Routes: GET /v1/models, GET /v1/models/{id}, POST /v1/chat/completions (streaming too, stop strings).
    Point any OpenAI client at http://HOST:PORT/v1, e.g. `OPENAI_BASE_URL=http://127.0.0.1:8000/v1 labtax generate`.
    """
    from labtax.teacher.server import serve

    return serve(host, port, allow_remote=allow_remote, batch_size=batch_size)
