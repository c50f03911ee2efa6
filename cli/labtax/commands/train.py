"""`labtax train`: phased LoRA smoke training on generated data, with a held-out verdict."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("train")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("generated"),
    show_default=True,
    help="What `labtax generate` wrote.",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Report and adapter folder [default: DATA/train].",
)
@click.option(
    "--phases",
    default="knowledge,skills",
    show_default=True,
    help="Phases in order: knowledge (phases/knowledge_train_msgs.jsonl), skills (phases/skills_train_msgs.jsonl: compositional + replay).",
)
@click.option(
    "--steps",
    type=click.IntRange(1, 100000),
    default=None,
    help="Optimizer steps per phase [default: 2 passes over the phase's data, at most 30].",
)
@click.option("--batch-size", type=click.IntRange(1, 1024), default=4, show_default=True)
@click.option(
    "--lr", type=click.FloatRange(0, 1, min_open=True), default=5e-4, show_default=True, help="Learning rate (LoRA)."
)
@click.option(
    "--max-minutes",
    type=click.FloatRange(0, None, min_open=True),
    default=None,
    help="Time budget: stop cleanly between steps, report what was done.",
)
@click.option("--fail-if-no-improvement", is_flag=True, help="Exit 1 unless the verdict is 'learned' (a CI gate).")
@click.option("--seed", type=int, default=0, show_default=True)
def command(data_dir, output, phases, steps, batch_size, lr, max_minutes, fail_if_no_improvement, seed):
    """Fine-tune the embedded SmolLM2-135M with LoRA on the generated data, phase by phase, on the CPU.

    Each phase trains on the phase file `labtax generate` wrote (the file TRL and instructlab-training read):
    phase 1 on DATA/phases/knowledge_train_msgs.jsonl (knowledge samples with and without their document
    chunk, foundational skills), phase 2 on DATA/phases/skills_train_msgs.jsonl (compositional skills plus
    replayed phase-1 rows and any precomputed dataset `labtax mix` added). Before and after each phase the
    model is scored on the leaves' held-out seed answers (DATA/eval/heldout.jsonl, never shown to the
    teacher). Writes train_report.json, train_report.md and adapter/.
    Exit status: 0 done (whatever the verdict), 1 with --fail-if-no-improvement and no improvement,
    2 usage or environment error.
    """
    from labtax.train.data import parse_phases
    from labtax.train.runner import TrainOptions, run_training

    options = TrainOptions(
        data=data_dir,
        output=output or data_dir / "train",
        phases=parse_phases(phases),
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        max_minutes=max_minutes,
        seed=seed,
    )
    report = run_training(options, log=lambda message: click.echo(message, err=True))
    for phase in report["phases"]:
        click.echo(
            f"phase {phase['name']}: {phase['verdict']}; {phase['steps']} steps in {phase['seconds']:.0f}s, "
            f"train loss {_num(phase['train_loss_first'])} -> {_num(phase['train_loss_last'])}"
        )
    for example in report["examples"]:
        click.echo(
            f"  [{example['leaf']}] {_short(example['question'])}\n    before: {_short(example['before'])}\n    after:  {_short(example['after'])}"
        )
    click.echo(
        f"wrote {options.output}/train_report.json, train_report.md"
        + (f", {report['adapter']}/" if report["adapter"] else "")
    )
    click.echo(report["verdict_line"])
    return 1 if fail_if_no_improvement and report["verdict"] != "learned" else 0


def _num(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
