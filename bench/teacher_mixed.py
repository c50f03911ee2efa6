"""The embedded teacher on a generation-like mix of calls, against another version of its engine.

Generation sends the teacher staggered calls of very different sizes: one-token judge verdicts on ~250-token
prompts and long answers on ~1,000-token prompts. This replays 24 such calls (arrivals 0.3 s apart, every
fourth one long) on the current engine and, with --reference FILE, on another embedded.py loaded from a file
(e.g. `git show 0011900:cli/labtax/teacher/embedded.py > /tmp/static.py`, the static-batch engine), one
after the other in separate processes, and prints wall and CPU seconds for each.

    .venv/bin/python bench/teacher_mixed.py --reference /tmp/static.py
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import random
import subprocess
import sys
import time

WORDS = "the river city market bridge council winter harvest ledger engine".split()


def workload() -> list[tuple[float, str, int]]:
    rng = random.Random(0)
    jobs = []
    for i in range(24):
        long = i % 4 == 0
        prompt = " ".join(rng.choice(WORDS) for _ in range(900 if long else 220)) + "\nScore 1-3:"
        jobs.append((0.3 * i, prompt, 120 if long else 1 if i % 2 else 40))
    return jobs


def measure(engine_file: str | None) -> dict:
    if engine_file:
        spec = importlib.util.spec_from_file_location("reference_embedded", engine_file)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["reference_embedded"] = module
        spec.loader.exec_module(module)
    else:
        from labtax.teacher import embedded as module
    teacher = module.EmbeddedTeacher()
    teacher.load()

    async def one(index, delay, prompt, max_tokens):
        await asyncio.sleep(delay)
        messages = [{"role": "user", "content": prompt}]
        return await teacher.complete(messages, max_tokens=max_tokens, seed=index, temperature=0.7)

    async def run():
        return await asyncio.gather(*(one(i, *job) for i, job in enumerate(workload())))

    cpu, wall = time.process_time(), time.monotonic()
    results = asyncio.run(run())
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    teacher.close()
    return {
        "wall": round(wall, 1),
        "cpu": round(cpu, 1),
        "prompt_tokens": sum(r[0].prompt_tokens for r in results),
        "completion_tokens": sum(r[0].completion_tokens for r in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", help="another embedded.py to measure on the same workload")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child or None)))
        return
    runs = [("current engine", "")] + ([("reference " + args.reference, args.reference)] if args.reference else [])
    print(f"{'engine':48} {'wall s':>7} {'cpu s':>7} {'prompt tok':>11} {'completion tok':>15}")
    for label, engine in runs:
        out = subprocess.run(
            [sys.executable, __file__, "--child", engine], capture_output=True, text=True, check=True
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"{label:48} {r['wall']:7.1f} {r['cpu']:7.1f} {r['prompt_tokens']:11} {r['completion_tokens']:15}")


if __name__ == "__main__":
    main()
