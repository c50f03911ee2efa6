"""Benchmark: `labtax train` on this machine: LoRA vs full fine-tune per step, and the whole demo run.

Measures in one run, each configuration in a fresh process (peak memory is per process):

  * seconds per optimizer step at batch 4 (median of --steps timed steps after one warm-up step, the same
    seeded batches for every configuration, dynamic padding as `labtax train` does) and peak memory
    (VmHWM from /proc/self/status, which counts torch's allocations; psutil has no portable peak),
    for LoRA (r=16 on q/k/v/o, what `labtax train` does) and for a full fine-tune (every weight, AdamW),
    at each --threads count;
  * the wall time of `labtax train` over both phases with its defaults (a fresh process: model load,
    held-out evaluation before/after each phase, before/after answers, adapter and report writing).

Data: --data DIR (what `labtax generate` wrote; default generated/ when it is there), else a data folder in
the same format built from this taxonomy's own seeds (the seeds the teacher sees become the training
samples, the held-out seeds stay held out), so the bench runs without a generation first.

The machine is shared: the 1-minute load average is printed before and after, since other jobs stretch
wall time (and hurt 2-thread torch far more than 1-thread: see `choose_threads` in labtax/train/model.py).

Usage: .venv/bin/python bench/train.py [--data DIR] [--steps 5] [--threads 1,2] [--skip-demo]
Target (issue 6): both phases of the demo under 3 minutes wall on 2 cores.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LABTAX = shutil.which("labtax", path=str(BIN)) or "labtax"
DEMO_TARGET_S = 180.0
BATCH = 4


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def seed_data(folder: Path) -> Path:
    """A generate-shaped data folder from the taxonomy's seeds (no teacher needed)."""
    from labtax.config import load_config
    from labtax.generate import seeds
    from labtax.generate.run import heldout_record
    from labtax.lint.engine import lint
    from labtax.select import select
    from labtax.train import data as train_data

    buckets = {"knowledge": [], "foundational": [], "compositional": []}
    heldout = []
    for leaf in lint(select(REPO), load_config(REPO)).leaves:
        prompt_items, held = seeds.split(leaf)
        buckets[leaf.kind] += [
            {**heldout_record(leaf, item), "id": f"{leaf.path}#{n}"} for n, item in enumerate(prompt_items)
        ]
        heldout += [heldout_record(leaf, item) for item in held]
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        **{f"{bucket}.jsonl": records for bucket, records in buckets.items()},
        train_data.FILES["knowledge"]: buckets["knowledge"] + buckets["foundational"],
        train_data.FILES["skills"]: buckets["compositional"],
        train_data.HELDOUT: heldout,
    }
    for name, records in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / "summary.json").write_text(json.dumps({"run": {"teacher": "seeds"}, "leaves": {}}) + "\n")
    return folder


def worker(mode: str, threads: int, data: Path, steps: int) -> dict:
    """One configuration in this process: load, warm up one step, time `steps` steps."""
    import torch

    from labtax.train import data as train_data
    from labtax.train.encode import batches, encode, pad_token_id
    from labtax.train.loop import make_optimizer, run_steps
    from labtax.train.model import add_lora, load_base, trainable_parameters

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, tokenizer = load_base()
    loaded_kb = status_kb("VmRSS")
    if mode == "lora":
        model = add_lora(model)
    else:
        for param in model.parameters():
            param.requires_grad_(True)
    trainable, total = trainable_parameters(model)
    loaded = train_data.load_data(data)
    records = [r for rows in loaded.phases.values() for r in rows]
    items = [e for e in (encode(tokenizer, r, 384) for r in records) if e]
    stream = batches(items, BATCH, random.Random(0))
    optimizer = make_optimizer(model, 1e-4)
    pad = pad_token_id(tokenizer)
    run_steps(model, optimizer, stream, 1, pad, None)  # warm-up: first-call allocations, optimizer state
    stamps = [time.perf_counter()]
    result = run_steps(
        model, optimizer, stream, steps, pad, None, on_step=lambda *_: stamps.append(time.perf_counter())
    )
    per_step = [b - a for a, b in itertools.pairwise(stamps)]
    return {
        "mode": mode,
        "threads": threads,
        "steps": result.steps,
        "s_per_step": statistics.median(per_step),
        "peak_mb": status_kb("VmHWM") / 1024,
        "loaded_mb": loaded_kb / 1024,
        "trainable": trainable,
        "total": total,
        "loss_first": result.losses[0],
        "loss_last": result.losses[-1],
    }


def run_worker(mode: str, threads: int, data: Path, steps: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            mode,
            "--threads",
            str(threads),
            "--data",
            str(data),
            "--steps",
            str(steps),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        raise SystemExit(f"worker {mode}/{threads} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_demo(data: Path, out: Path) -> dict:
    started = time.monotonic()
    proc = subprocess.run([LABTAX, "train", "--data", str(data), "--output", str(out)], capture_output=True, text=True)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"labtax train failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    report = json.loads((out / "train_report.json").read_text())
    return {"wall": wall, "report": report}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per configuration")
    parser.add_argument("--threads", default=None, help="comma-separated thread counts [default: 1 and every core]")
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--worker", choices=["lora", "full"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, int(args.threads), args.data, args.steps)))
        return

    from labtax.train.model import cpu_threads

    cores = cpu_threads()
    threads = [int(t) for t in args.threads.split(",")] if args.threads else sorted({1, cores})
    tmp = Path(tempfile.mkdtemp(prefix="labtax-bench-train-"))
    try:
        data = args.data
        if data is None:
            default = REPO / "generated"
            data = default if (default / "eval" / "heldout.jsonl").is_file() else seed_data(tmp / "seed-data")
        load_before = os.getloadavg()[0]
        print(f"data: {data}  cores: {cores}  load average (1 min): {load_before:.1f}")
        rows = [run_worker(mode, t, data, args.steps) for mode in ("lora", "full") for t in threads]
        print(f"\nper step, batch {BATCH}, median of {args.steps} steps after 1 warm-up (fresh process each)")
        print(
            f"{'mode':<6} {'threads':>7} {'trainable':>12} {'s/step':>8} {'peak RSS MB':>12} {'after load MB':>14} {'loss first->last':>18}"
        )
        for r in rows:
            print(
                f"{r['mode']:<6} {r['threads']:>7} {r['trainable']:>12,} {r['s_per_step']:>8.2f} {r['peak_mb']:>12.0f} {r['loaded_mb']:>14.0f} "
                f"{r['loss_first']:>8.3f} -> {r['loss_last']:.3f}"
            )
        for t in threads:
            lora = next(r for r in rows if r["mode"] == "lora" and r["threads"] == t)
            full = next(r for r in rows if r["mode"] == "full" and r["threads"] == t)
            print(
                f"  {t} thread(s): LoRA is {full['s_per_step'] / lora['s_per_step']:.2f}x faster per step, "
                f"peak memory {full['peak_mb'] - lora['peak_mb']:+.0f} MB for full fine-tuning"
            )
        if not args.skip_demo:
            demo = run_demo(data, tmp / "demo-out")
            report = demo["report"]
            print(f"\n`labtax train` with defaults (both phases), threads chosen: {report['settings']['threads']}")
            print(f"{'phase':<10} {'samples':>8} {'steps':>6} {'seconds':>8} {'verdict':>16}")
            for p in report["phases"]:
                print(
                    f"{p['name']:<10} {p['samples']:>5}+{p['replay']:<2} {p['steps']:>6} {p['seconds']:>8.1f} {p['verdict']:>16}"
                )
            verdict = "meets" if demo["wall"] <= DEMO_TARGET_S else "MISSES"
            print(
                f"wall (fresh process, everything): {demo['wall']:.1f} s -> {verdict} the {DEMO_TARGET_S:.0f} s target"
            )
            print(f"verdict: {report['verdict_line']}")
        print(
            f"\nload average (1 min) at the end: {os.getloadavg()[0]:.1f} (other jobs on this machine stretch every number)"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "cli"))
    main()
