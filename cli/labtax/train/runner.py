"""One smoke-training run: evaluate, train phase by phase, evaluate again, write the report and adapter.

Order of work: the data is checked and the phases planned before torch is imported (a wrong folder fails
fast); the base model is scored on the held-out seeds and answers a few of them; each phase then trains
and is scored again on the held-out seeds of the leaves it trained on; at the end the adapted model
answers the same questions. A time budget (--max-minutes) is checked between steps: when it runs out,
training stops, the current phase is still scored (a few seconds) and later phases are recorded as not run,
so the report is partial but never missing.
"""

from __future__ import annotations

import math
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labtax.records.layout import Layout
from labtax.train import data as train_data
from labtax.train import verdict as verdicts
from labtax.train.encode import batches, encode, pad_token_id
from labtax.train.evaluate import generate_answers, leaf_losses, mean_loss, pick_examples, question_of
from labtax.train.verdict import mean
from labtax.wording import counted


@dataclass
class TrainOptions:
    data: Path
    output: Path
    phases: list[str]
    steps: int | None = None  # per phase; None: AUTO_EPOCHS passes over the phase's data, at most AUTO_MAX_STEPS
    batch_size: int = 4
    lr: float = 5e-4
    max_minutes: float | None = None
    seed: int = 0
    lora_r: int = 16
    lora_alpha: int = 32
    max_length: int = 384  # tokens per sample; longer samples lose the end of their answer
    examples: int = 3
    max_new_tokens: int = 48


AUTO_EPOCHS = 2
AUTO_MAX_STEPS = 30


def phase_steps(options: TrainOptions, items: int) -> int:
    """--steps, else two passes over the phase's samples (capped): enough to move the loss, few enough
    not to memorise a handful of samples, and the same budget per sample whatever the data size."""
    if options.steps:
        return options.steps
    return max(1, min(AUTO_MAX_STEPS, math.ceil(AUTO_EPOCHS * items / options.batch_size)))


def _round(value, digits: int = 4):
    return None if value is None else round(value, digits)


def _encode_all(tokenizer, records: list[dict], max_length: int) -> tuple[list, int]:
    items = [encode(tokenizer, record, max_length) for record in records]
    kept = [item for item in items if item is not None]
    return kept, len(items) - len(kept)


def _heldout_rows(before: dict, after: dict, own: list[str], replayed: list[str]) -> dict:
    rows = {}
    for leaf in own + [leaf for leaf in replayed if leaf not in own]:
        if leaf not in before:
            continue
        b, a = before[leaf], after[leaf]
        rows[leaf] = {
            "role": "trained" if leaf in own else "replayed",
            "examples": b["examples"],
            "tokens": b["tokens"],
            "loss_before": _round(b["loss"]),
            "loss_after": _round(a["loss"]),
            "ppl_before": _round(b["ppl"], 3),
            "ppl_after": _round(a["ppl"], 3),
        }
    return rows


def _interleave(plans) -> list[str]:
    """Leaves alternating between kinds (knowledge, foundational, compositional), so the side-by-side
    answers cover every kind trained, not three leaves of the first one."""
    queues = [
        sorted({s["leaf"] for s in plan.samples if s.get("kind") == kind}) for plan in plans for kind in plan.kinds
    ]
    queues.append(sorted({s["leaf"] for plan in plans for s in plan.samples if s.get("kind") not in plan.kinds}))
    order = []
    while any(queues):
        for queue in queues:
            if queue:
                order.append(queue.pop(0))
    return order


def _phase_entry(plan) -> dict:
    return {
        "name": plan.name,
        "kinds": list(plan.kinds),
        "samples": len(plan.samples),
        "replay": len(plan.replay),
        "replay_external": plan.external,  # rows of a precomputed dataset (labtax mix): replay of no leaf
        "own_leaves": plan.own_leaves,
        "replayed_leaves": plan.replayed_leaves,
        "steps": 0,
        "seconds": 0.0,
        "train_loss_first": None,
        "train_loss_last": None,
        "train_losses": [],
        "probe_loss_before": None,
        "probe_loss_after": None,
        "skipped_samples": 0,
        "stopped_at_budget": False,
        "heldout": {},
        "forgetting": None,
    }


@dataclass
class PhaseRun:
    """What every phase shares: the model being trained, how to score it, the budget and the seeded RNG."""

    model: object
    tokenizer: object
    pad_id: int
    heldout_items: list
    options: TrainOptions
    deadline: float | None
    rng: random.Random
    log: Callable[[str], None]

    def phase(self, plan, entry: dict, current: dict) -> dict:
        """Train one phase and fill its report entry; returns the held-out scores after it."""
        import torch

        from labtax.train.loop import make_optimizer, run_steps

        options, log = self.options, self.log
        if not plan.samples:
            entry["verdict"] = verdicts.NO_DATA
            log(f"phase {plan.name}: no data ({'/'.join(plan.kinds)} samples), skipped")
            return current
        own, skipped = _encode_all(self.tokenizer, plan.samples, options.max_length)
        replay, skipped_replay = _encode_all(self.tokenizer, plan.replay, options.max_length)
        items, entry["skipped_samples"] = own + replay, skipped + skipped_replay
        if not own:
            entry["verdict"] = verdicts.NO_DATA
            log(
                f"phase {plan.name}: every sample is longer than {options.max_length} tokens before its answer, skipped"
            )
            return current
        # a fixed batch of the phase's own samples, scored before and after: the plainest "did it train"
        probe = self.rng.sample(own, min(options.batch_size, len(own)))
        entry["probe_loss_before"] = _round(mean_loss(self.model, probe, self.pad_id))
        steps = phase_steps(options, len(items))
        log(
            f"phase {plan.name}: {counted(len(plan.samples), 'sample')} + {len(plan.replay)} replayed, {counted(steps, 'step')} at batch {options.batch_size}"
        )
        torch.manual_seed(options.seed)
        result = run_steps(
            self.model,
            make_optimizer(self.model, options.lr),
            batches(items, options.batch_size, self.rng),
            steps,
            self.pad_id,
            self.deadline,
            on_step=lambda step, total, loss: (
                log(f"  step {step}/{total} loss {loss:.3f}") if step == 1 or step % 5 == 0 or step == total else None
            ),
        )
        entry.update(
            steps=result.steps,
            seconds=round(result.seconds, 2),
            stopped_at_budget=result.stopped_at_budget,
            train_losses=[round(x, 4) for x in result.losses],
        )
        if result.losses:
            entry["train_loss_first"], entry["train_loss_last"] = _round(result.losses[0]), _round(result.losses[-1])
        # no step taken: the model is unchanged, so its scores are too
        after = leaf_losses(self.model, self.heldout_items, self.pad_id) if result.steps else current
        entry["probe_loss_after"] = (
            _round(mean_loss(self.model, probe, self.pad_id)) if result.steps else entry["probe_loss_before"]
        )
        entry["heldout"] = _heldout_rows(current, after, plan.own_leaves, entry["replayed_leaves"])
        replayed = [entry["heldout"][leaf] for leaf in entry["replayed_leaves"] if leaf in entry["heldout"]]
        if replayed:
            entry["forgetting"] = {
                "leaves": len(replayed),
                "loss_before": _round(mean([r["loss_before"] for r in replayed])),
                "loss_after": _round(mean([r["loss_after"] for r in replayed])),
            }
        entry["verdict"] = verdicts.phase_verdict(entry)
        log(f"phase {plan.name}: {entry['verdict']} ({result.steps} steps, {result.seconds:.0f}s)")
        return after


def run_training(options: TrainOptions, log=lambda message: None) -> dict:
    from labtax.train import model as student
    from labtax.train import report as reports

    started = time.monotonic()
    threads = student.choose_threads()
    deadline = started + options.max_minutes * 60 if options.max_minutes else None
    data = train_data.load_data(options.data, options.phases)
    plans = train_data.plan_phases(data, options.phases)
    entries = [_phase_entry(plan) for plan in plans]
    report: dict[str, Any] = {
        "model": "SmolLM2-135M-Instruct",
        "data": str(options.data),
        "adapter": None,
        "settings": {
            "phases": options.phases,
            "steps": options.steps or f"auto ({AUTO_EPOCHS} epochs, at most {AUTO_MAX_STEPS})",
            "batch_size": options.batch_size,
            "lr": options.lr,
            "max_minutes": options.max_minutes,
            "seed": options.seed,
            "lora_r": options.lora_r,
            "lora_alpha": options.lora_alpha,
            "lora_targets": student.LORA_TARGETS,
            "max_length": options.max_length,
            "replay_fraction": train_data.REPLAY_FRACTION,  # as generate mixed the phase files
            "phase_files": [train_data.FILES[name] for name in options.phases],
            "threads": threads,
            "cores": student.cpu_threads(),
        },
        "heldout_examples": len(data.heldout),
        "phases": entries,
        "examples": [],
    }
    if not any(plan.samples for plan in plans) or not data.heldout:
        for entry in entries:
            entry["verdict"] = verdicts.NO_DATA
        report["verdict"] = verdicts.NO_DATA
        why = (
            "no training samples for the phases " + ", ".join(options.phases)
            if not any(p.samples for p in plans)
            else "no held-out seed examples to evaluate on"
        )
        line = f"{verdicts.NO_DATA}: {why} in {options.data}/ (generate for leaves of those kinds first)"
        held, reason = train_data.held_back(Path(options.data))
        if held and not any(p.samples for p in plans):
            line = (
                f"{verdicts.NO_DATA}: the gate vetted none of the samples in {options.data}/: "
                f"{counted(held, 'accepted sample')} wait in {Layout(options.data).unvetted}, unvetted ({reason}); "
                "to train on them anyway, generate with --keep-unvetted; for vetted data, generate with calibration "
                "on (the default) and a stronger teacher (--base-url)"
            )
        report["verdict_line"] = line
        report["seconds"] = round(time.monotonic() - started, 2)
        reports.write(report, options.output)
        return report

    student.setup_torch(options.seed, threads)
    log(f"loading {report['model']} ({counted(threads, 'torch thread')} on {counted(student.cpu_threads(), 'core')})")
    model, tokenizer = student.load_base()
    model = student.add_lora(model, options.lora_r, options.lora_alpha)
    trainable, total = student.trainable_parameters(model)
    report["trainable_parameters"], report["total_parameters"] = trainable, total
    pad_id = pad_token_id(tokenizer)

    heldout_items, _ = _encode_all(tokenizer, data.heldout, options.max_length)
    current = leaf_losses(model, heldout_items, pad_id)
    over_budget = deadline is not None and time.monotonic() >= deadline
    shown = (
        [] if over_budget else pick_examples(data.heldout, _interleave(plans), options.examples)
    )  # answers are the first thing a tight budget drops
    log(
        f"base model: held-out answer loss {mean([v['loss'] for v in current.values()]):.3f} over {counted(len(current), 'leaf')}; answering {counted(len(shown), 'question')}"
    )
    before_answers = generate_answers(model, tokenizer, [r["messages"] for r in shown], options.max_new_tokens)

    run = PhaseRun(model, tokenizer, pad_id, heldout_items, options, deadline, random.Random(options.seed), log)
    for plan, entry in zip(plans, entries):
        current = run.phase(plan, entry, current)
        if entry["stopped_at_budget"]:
            log(f"time budget of {options.max_minutes} min reached: later phases not run")
            for later in entries[entries.index(entry) + 1 :]:
                later["stopped_at_budget"] = True
                later["verdict"] = verdicts.STOPPED if later["samples"] else verdicts.NO_DATA
            break

    trained = any(entry["steps"] for entry in entries)
    after_answers = (
        generate_answers(model, tokenizer, [r["messages"] for r in shown], options.max_new_tokens)
        if trained
        else before_answers
    )
    report["examples"] = [
        {
            "leaf": r["leaf"],
            "question": question_of(r),
            "reference": r["messages"][-1]["content"],
            "before": b,
            "after": a,
        }
        for r, b, a in zip(shown, before_answers, after_answers)
    ]
    if trained:
        report["adapter"] = str(student.save_adapter(model, Path(options.output) / "adapter"))
    else:  # an adapter left by an earlier run would contradict this report
        shutil.rmtree(Path(options.output) / "adapter", ignore_errors=True)
    report["verdict"] = verdicts.run_verdict(entries)
    report["verdict_line"] = verdicts.verdict_line(report["verdict"], entries)
    report["seconds"] = round(time.monotonic() - started, 2)
    reports.write(report, options.output)
    return report
