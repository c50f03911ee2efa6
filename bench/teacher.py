"""Benchmark: the embedded teacher (SmolLM2-135M-Instruct on the CPU), side by side with its references.

Measures in one run:
  * start-up, cold and warm cache, each in a fresh process: import, model load (the cold one converts the
    GGUF into an empty temp cache), and time to first sample (a 1-token completion) after the load;
  * aggregate decode throughput through the real batching path (concurrent `complete` calls) at batch
    1, 8 and 16: completion tokens over wall time, all requests capped at --max-tokens;
  * the reference the issue quotes, re-measured here: transformers' own `generate`, fp32, batch 1.

References from the issue (this machine, 2 cores): llama.cpp on the Q4_1 GGUF ~126 tokens/s single
stream; transformers fp32 ~18. Target: batched aggregate >= 126 tokens/s.

On a shared machine other jobs stretch wall time: the load average is printed, and each row also gives
tokens per CPU-second of this process (what the decode costs, whoever else runs) times the thread count.

Usage: .venv/bin/python bench/teacher.py [--max-tokens 64] [--batches 1,8,16] [--no-cold] [--no-reference]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time

LLAMA_CPP_REFERENCE = 126.0
TRANSFORMERS_FP32_REFERENCE = 18.0
PROMPTS = [
    "Write a detailed essay about the history of the Roman Empire.",
    "Explain in detail how photosynthesis works, step by step.",
    "Write a long story about a dragon who learns to bake bread.",
    "Describe the water cycle in detail for a school report.",
    "Explain how a car engine works, part by part.",
    "Write a long letter to a friend about your summer holiday.",
    "Describe the rules of chess in detail.",
    "Explain the causes of the First World War in detail.",
]

CHILD = """
import asyncio, json, sys, time
started = time.monotonic()
from labtax.teacher.embedded import EmbeddedTeacher
from labtax.teacher.smollm import cache_root, ensure_cache
imported = time.monotonic()
built = ensure_cache(log=lambda message: None).built
teacher = EmbeddedTeacher()
teacher.load()
loaded = time.monotonic()
asyncio.run(teacher.complete([{"role": "user", "content": "Say hello."}], max_tokens=1, seed=0))
sampled = time.monotonic()
teacher.close()
print(json.dumps({"built": built, "import": imported - started, "load": loaded - imported, "first": sampled - loaded}))
"""


def startup(cache_dir: str) -> dict:
    env = {**os.environ, "LABTAX_CACHE_DIR": cache_dir}
    proc = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def throughput(teacher, batch: int, max_tokens: int) -> dict:
    async def run():
        prompts = [PROMPTS[i % len(PROMPTS)] for i in range(batch)]
        return await asyncio.gather(
            *(
                teacher.complete([{"role": "user", "content": p}], temperature=0.5, max_tokens=max_tokens, seed=i)
                for i, p in enumerate(prompts)
            )
        )

    batches = teacher.stats["batches"]
    cpu, wall = time.process_time(), time.monotonic()
    results = asyncio.run(run())
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    tokens = sum(c.completion_tokens for r in results for c in r)
    return {"tokens": tokens, "wall": wall, "cpu": cpu, "passes": teacher.stats["batches"] - batches}


def transformers_fp32_batch1(max_tokens: int, threads: int) -> dict:
    """transformers' own generate, fp32, one sequence: the issue's "transformers fp32" reference."""
    import torch

    from labtax.teacher.smollm import load_model_and_tokenizer

    torch.set_num_threads(threads)
    model, tokenizer = load_model_and_tokenizer(dtype=torch.float32)
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": PROMPTS[0]}], tokenize=False, add_generation_prompt=True
    )
    inputs = tokenizer(text, return_tensors="pt")
    kwargs = dict(
        do_sample=True,
        temperature=0.5,
        top_p=0.9,
        max_new_tokens=max_tokens,
        min_new_tokens=max_tokens,
        pad_token_id=tokenizer.eos_token_id,
    )
    with torch.inference_mode():
        model.generate(**inputs, **{**kwargs, "max_new_tokens": 4, "min_new_tokens": 4})  # warm-up
        cpu, wall = time.process_time(), time.monotonic()
        out = model.generate(**inputs, **kwargs)
        wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    return {"tokens": int(out.shape[1] - inputs.input_ids.shape[1]), "wall": wall, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--batches", default="1,8,16")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-cache start-up (a ~20 s GGUF conversion)")
    parser.add_argument("--no-reference", action="store_true", help="skip re-measuring transformers fp32 batch 1")
    args = parser.parse_args()

    from labtax.teacher.embedded import EmbeddedTeacher, default_threads, preferred_dtype
    from labtax.teacher.smollm import cache_root, ensure_cache

    threads = default_threads()
    print(f"embedded teacher: {preferred_dtype()}, {threads} thread(s); load average at start {os.getloadavg()[0]:.1f}")
    ensure_cache()  # the warm runs below use the user's cache; build it first if needed

    rows = []
    if not args.no_cold:
        with tempfile.TemporaryDirectory(prefix="labtax-bench-cache-") as empty:
            cold = startup(empty)
        assert cold["built"], "the cold run found a cache"
        rows.append(("start-up, cold cache (GGUF conversion)", cold))
    rows.append(("start-up, warm cache", startup(str(cache_root()))))
    print()
    print(f"{'start-up':42} {'import s':>9} {'load s':>8} {'first sample s':>15}")
    for label, r in rows:
        print(f"{label:42} {r['import']:9.2f} {r['load']:8.2f} {r['first']:15.2f}")

    teacher = EmbeddedTeacher(max_wait_ms=20)
    teacher.load()
    throughput(teacher, 2, 8)  # warm-up: first-call kernel set-up is not decode speed
    print()
    print(
        f"{'decode (max_tokens=' + str(args.max_tokens) + ')':42} {'tokens':>7} {'wall s':>7} {'tok/s':>7} {'tok/CPU-s x threads':>20} {'passes':>7}"
    )
    best = 0.0
    for batch in [int(b) for b in args.batches.split(",")]:
        r = throughput(teacher, batch, args.max_tokens)
        rate = r["tokens"] / r["wall"]
        best = max(best, rate)
        print(
            f"{'embedded, batch ' + str(batch):42} {r['tokens']:7d} {r['wall']:7.2f} {rate:7.1f} {r['tokens'] / r['cpu'] * threads:20.1f} {r['passes']:7d}"
        )
    teacher.close()
    if not args.no_reference:
        r = transformers_fp32_batch1(args.max_tokens, threads)
        print(
            f"{'transformers generate fp32, batch 1 (here)':42} {r['tokens']:7d} {r['wall']:7.2f} {r['tokens'] / r['wall']:7.1f} {r['tokens'] / r['cpu'] * threads:20.1f} {'':>7}"
        )
    print(f"{'reference: transformers fp32 (issue)':42} {'':>7} {'':>7} {TRANSFORMERS_FP32_REFERENCE:7.1f}")
    print(f"{'reference: llama.cpp Q4_1, 1 stream (issue)':42} {'':>7} {'':>7} {LLAMA_CPP_REFERENCE:7.1f}")
    verdict = "met" if best >= LLAMA_CPP_REFERENCE else "NOT met"
    print(
        f"\ntarget batched aggregate >= {LLAMA_CPP_REFERENCE:.0f} tok/s: {verdict} (best {best:.1f}); load average at end {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
