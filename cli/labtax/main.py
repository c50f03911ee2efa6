"""The `labtax` command: wires the commands in labtax/commands/, nothing else.

Commands are imported only when invoked, so `labtax lint` never pays for the imports of
`generate` or `train` (openai, torch, transformers).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import click

from labtax import __version__
from labtax.errors import LabtaxError

COMMANDS = {
    "lint": "Check leaves against the schemas and lint rules.",
    "rules": "List every lint rule (id, level, what, why, fix).",
    "diff": "List the leaves a branch changed.",
    "generate": "Generate synthetic data for leaves with a teacher LLM.",
    "vet": "Vet JSONL rows made anywhere with generation's gate.",
    "merge": "Merge the output folders of generate --shard runs into one.",
    "teacher": "Show which teacher would serve.",
    "serve": "Serve the embedded teacher as an OpenAI-compatible API on 127.0.0.1.",
    "mix": "Mix a recipe's datasets into one training file (replay data).",
    "train": "Phased LoRA smoke training on generated data.",
    "comment": "Render (and post) the pull-request comment.",
    "new": "Scaffold a new leaf.",
    "cache": "List or prune fetched knowledge-document repositories.",
    "tree": "Print the taxonomy with leaf counts.",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        import importlib.util  # only --help needs it; `labtax lint` start-up does not

        return [name for name in COMMANDS if importlib.util.find_spec(f"labtax.commands.{name}")]

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module_name = f"labtax.commands.{name}"
        try:
            return importlib.import_module(module_name).command
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # a command not built yet; a missing dependency still raises
                return None
            raise

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="labtax")
def cli():
    """labtax: taxonomy-as-code for LLM alignment data (the LAB method)."""


def main(argv: list[str] | None = None) -> None:
    """Run a command; its return value is the exit status (commands return codes, never exit themselves).

    Exit status: 0 ok, 1 findings or a failed verdict, 2 a usage or environment error, 3 a bug in labtax
    (a short message and where the traceback was saved: never 1, which CI would read as findings),
    130/143 stopped by SIGINT/SIGTERM.
    """
    with stop_signals() as stop:
        try:
            status = cli.main(args=argv, prog_name="labtax", standalone_mode=False)
        except LabtaxError as exc:
            click.echo(f"labtax: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except (click.exceptions.Abort, KeyboardInterrupt) as exc:
            # click turns a KeyboardInterrupt into Abort, raised from it: the command's hint is on the cause.
            hint = getattr(exc, "hint", None) or getattr(exc.__cause__, "hint", None)
            click.echo("labtax: interrupted" + (f"; {hint}" if hint else ""), err=True)
            sys.exit(128 + stop.signum)
        except click.ClickException as exc:
            exc.show()
            sys.exit(2)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except Exception as exc:
            sys.exit(_crash(exc))
    sys.exit(status if isinstance(status, int) else 0)


class _Received:
    signum: int = signal.SIGINT


@contextlib.contextmanager
def stop_signals() -> Iterator[_Received]:
    """SIGINT and SIGTERM stop a run, whatever the parent process set.

    A shell without job control starts background commands (`make test &` in a script) with SIGINT
    ignored, and Python then never installs its KeyboardInterrupt handler: a Ctrl-C or `kill -INT` was
    silently ignored and the run went on to the end with exit 0. SIGTERM (CI cancelling a job, `kill`)
    is handled as SIGINT is: asyncio.run's own SIGINT handler cancels the running task (or Python's raises
    KeyboardInterrupt), so `finally` blocks close teachers and leave the call cache for a resume.
    Both handlers are restored on the way out (main() also runs inside test processes).
    """
    received = _Received()
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def on_sigterm(signum, frame):
        received.signum = signum
        handler = signal.getsignal(signal.SIGINT)  # asyncio.run's while a loop runs, else Python's
        if callable(handler):
            handler(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)  # asyncio.run installs its own only over this one
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def _crash(exc: BaseException) -> int:
    """A bug, not a finding: say so in one line, keep the traceback in a file, exit 3."""
    import tempfile
    import traceback
    from datetime import UTC, datetime

    text = "".join(traceback.format_exception(exc))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    header = f"labtax {__version__}, Python {sys.version.split()[0]}, argv {sys.argv!r}\n\n"
    saved = None
    for folder in (_crash_folder(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"labtax-crash-{stamp}-{os.getpid()}.log"
            path.write_text(header + text, encoding="utf-8")
            saved = path
            break
        except OSError:
            continue
    where = f"the traceback is in {saved}" if saved else "the traceback follows"
    click.echo(
        f"labtax: internal error: {type(exc).__name__}: {exc}\n"
        f"This is a bug in labtax, not a problem with your files: {where}. Please report it with that file "
        "and the command you ran.",
        err=True,
    )
    if saved is None:
        click.echo(text, err=True)
    return 3


def _crash_folder() -> Path:
    from labtax.cachedir import cache_root

    return cache_root() / "crashes"
