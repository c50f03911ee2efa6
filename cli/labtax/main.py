"""The `labtax` command: wires the commands in labtax/commands/, nothing else.

Commands are imported only when invoked, so `labtax lint` never pays for the imports of
`generate` or `train` (openai, torch, transformers).
"""

from __future__ import annotations

import importlib
import sys

import click

from labtax import __version__
from labtax.errors import LabtaxError

COMMANDS = {
    "lint": "Check leaves against the schemas and lint rules.",
    "rules": "List every lint rule (id, level, what, why, fix).",
    "diff": "List the leaves a branch changed.",
    "generate": "Generate synthetic data for leaves with a teacher LLM.",
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
    """Run a command; its return value is the exit status (commands return codes, never exit themselves)."""
    try:
        status = cli.main(args=argv, prog_name="labtax", standalone_mode=False)
    except LabtaxError as exc:
        click.echo(f"labtax: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("labtax: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("labtax: interrupted", err=True)
        sys.exit(130)
    sys.exit(status if isinstance(status, int) else 0)
