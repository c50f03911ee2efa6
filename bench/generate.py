"""Benchmark: `labtax generate` pipeline throughput against the scripted OpenAI-compatible fake, side by side
with InstructLab's generator (instructlab-sdg) where it can run here.

The fake (tests/fake_openai.py) answers every call after a fixed latency (50 ms by default), so the best a
client can do is `concurrency / latency` calls per second. We build a synthetic taxonomy (the repo's nine
leaves, copied under new names with a variant line so no two copies share a cached call), run the real
`run_generation` + `OpenAITeacher` (real `openai` client over HTTP on 127.0.0.1) and measure:

  * throughput: teacher calls / wall seconds of the whole run (setup, generation, artifact writes), as a
    fraction of the limit, at concurrency 8, 32 and 64;
  * per-sample overhead: a run with latency 0; the client process's CPU time per accepted sample and per call
    (everything labtax and the openai client do, outside the server), and the server's CPU per call;
  * the server's own ceiling: calls/s at latency 0 (client and server each on their own core).

By default the fake runs in its own process (`--serve`), so its request handling does not share the client's
GIL: on a 2-core machine an in-process ThreadingHTTPServer would otherwise compete with the pipeline for one
interpreter. `--server thread` runs it in-process, as the tests do, for comparison. The server speaks
HTTP/1.1 keep-alive (as vLLM, llama.cpp and every hosted endpoint do); the tests' fake closes each connection
(HTTP/1.0), which `--http10` reproduces.

Usage: .venv/bin/python bench/generate.py [--quick] [--concurrency 8,32,64] [--latency 0.05] [--profile]
Target (issue 4): >= 90% of the limit at concurrency 32.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = 0.90
LEAVES = (
    "compositional_skills/writing/business/ceo_earnings_email",
    "compositional_skills/writing/rewriting/plain_language",
    "compositional_skills/extraction/meeting_notes/action_items",
    "foundational_skills/reasoning/logical/ordering",
    "foundational_skills/reasoning/arithmetic/multi_step_word_problems",
    "foundational_skills/reasoning/unit_conversion",
    "knowledge/science/biology/photosynthesis",
    "knowledge/finance/financial_statements/reading_financial_statements",
    "knowledge/technology/version_control/git_basics",
)
ILAB_VENV = Path(os.environ.get("LABTAX_ILAB_VENV", "/tmp/ilab-sdg-venv"))


def load_fake():
    """tests/fake_openai.py, loaded by path (the tests package is not installed)."""
    spec = importlib.util.spec_from_file_location("labtax_bench_fake_openai", REPO / "tests" / "fake_openai.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- the server --------------------------------


def bench_responder(fake_module):
    """good_teacher, seeded by a hash of the whole conversation: distinct prompts get distinct outputs."""
    good_teacher = fake_module.good_teacher

    def responder(request: dict):
        text = json.dumps(request["messages"], sort_keys=True)
        seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=6).digest(), "big") ^ (
            request.get("seed") or 0
        )
        return good_teacher({"messages": request["messages"], "seed": seed})

    return responder


def make_fake(latency: float, http10: bool):
    fake_module = load_fake()
    fake = fake_module.FakeOpenAI(responder=bench_responder(fake_module), latency=latency)
    handler = fake.server.RequestHandlerClass
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's delayed ACK
    # (40 ms on Linux), which a real server (uvicorn, vLLM) avoids with TCP_NODELAY. So do we.
    handler.disable_nagle_algorithm = os.environ.get("LABTAX_BENCH_NAGLE") != "1"
    if not http10:
        handler.protocol_version = "HTTP/1.1"  # keep-alive; it always sends Content-Length
    return fake


def serve(latency: float, http10: bool) -> None:
    """`--serve`: run the fake in this process until stdin closes; then report requests and CPU seconds."""
    fake = make_fake(latency, http10)
    with fake:
        print(json.dumps({"base_url": fake.base_url}), flush=True)
        for line in sys.stdin:
            if line.strip() == "stats":
                print(json.dumps({"requests": len(fake.requests), "cpu_s": time.process_time()}), flush=True)


class ProcessServer:
    """The fake in a child process (its own GIL and core)."""

    def __init__(self, latency: float, http10: bool):
        args = [sys.executable, __file__, "--serve", "--latency", str(latency)] + (["--http10"] if http10 else [])
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.base_url = json.loads(self.proc.stdout.readline())["base_url"]

    def stats(self) -> dict:
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


class ThreadServer:
    """The fake in this process, as the tests run it (shares the client's GIL)."""

    def __init__(self, latency: float, http10: bool):
        self.fake = make_fake(latency, http10).__enter__()
        self.base_url = self.fake.base_url

    def stats(self) -> dict:
        return {"requests": len(self.fake.requests), "cpu_s": None}

    def close(self) -> None:
        self.fake.__exit__(None, None, None)


# ---------------------------------------------------------------- the taxonomy ------------------------------


def make_taxonomy(root: Path, copies: int) -> Path:
    """`copies` renamed copies of each repo leaf; a variant line makes every copy's prompts distinct."""
    for rel in LEAVES:
        for copy in range(copies):
            dest = root / f"{rel}_v{copy}"
            shutil.copytree(REPO / rel, dest)
            text = (dest / "qna.yaml").read_text(encoding="utf-8")
            if "task_description: |\n" in text:
                text = text.replace("task_description: |\n", f"task_description: |\n  Variant {copy}.\n", 1)
            else:
                text = re.sub(r"^domain: (\S+)", rf"domain: \1_variant_{copy}", text, count=1, flags=re.M)
            (dest / "qna.yaml").write_text(text, encoding="utf-8")
    shutil.copytree(REPO / "documents", root / "documents")
    return root


def load_leaves(root: Path, expected: int) -> list:
    from labtax.config import load_config
    from labtax.lint.engine import lint
    from labtax.select import select

    # Copies repeat their seed questions, which lint reports across leaves; every copy still loads.
    leaves = lint(select(root), load_config(root)).leaves
    if len(leaves) != expected:
        sys.exit(f"expected {expected} leaves in the synthetic taxonomy, loaded {len(leaves)}")
    return leaves


def calls_per_candidate(leaves) -> float:
    from labtax.generate.pipelines import pipeline_for

    return sum(len(pipeline_for(leaf).STAGES) for leaf in leaves) / len(leaves)


# ---------------------------------------------------------------- one run -----------------------------------


class LocalTeacher:
    """The same scripted answers, in-process and instant: what labtax itself costs, without HTTP."""

    name, model = "local", "fake-teacher"

    def __init__(self):
        self.responder = bench_responder(load_fake())
        self.calls = 0

    async def complete(self, messages, *, n=1, temperature=0.7, max_tokens=256, seed=None, top_logprobs=0):
        from labtax.teacher.base import Completion

        self.calls += 1
        reply = self.responder({"messages": messages, "seed": seed})
        return [Completion(reply.content, reply.finish_reason, 10, 10)]

    async def aclose(self):
        pass


def run_once(leaves, server, concurrency: int, num_samples: int, profile: Path | None = None) -> dict:
    """One run_generation into a fresh output folder (empty cache); server None = LocalTeacher."""
    from labtax.generate.run import Settings, run_generation
    from labtax.teacher.openai_backend import OpenAITeacher

    out = Path(tempfile.mkdtemp(prefix="labtax-bench-gen-"))
    before = server.stats() if server else {"requests": 0, "cpu_s": None}
    window = []  # (start, end) of every teacher call: separates setup and artifact writes from calling

    class TimedTeacher(OpenAITeacher):
        async def complete(self, *a, **kw):
            start = time.perf_counter()
            try:
                return await super().complete(*a, **kw)
            finally:
                window.append((start, time.perf_counter()))

    local = LocalTeacher()

    async def go():
        teacher = TimedTeacher(server.base_url, "bench", "fake-teacher", concurrency=concurrency) if server else local
        try:
            return await run_generation(leaves, teacher, out, Settings(num_samples=num_samples))
        finally:
            await teacher.aclose()

    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    cpu, t0 = time.process_time(), time.perf_counter()
    summary = asyncio.run(go())
    t1, cpu = time.perf_counter(), time.process_time() - cpu
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)
    after = server.stats() if server else {"requests": local.calls, "cpu_s": None}
    shutil.rmtree(out, ignore_errors=True)
    totals = summary["totals"]
    served = after["requests"] - before["requests"]
    # Every call the run made reached the server once; a few in-run cache hits (two candidates asking the same
    # thing, e.g. a repeated question then rejected as a duplicate) are part of a real run, not an error.
    if served != totals["teacher_calls"] or totals["accepted"] < 0.9 * totals["requested"]:
        sys.exit(f"bench setup is wrong: {totals}, the teacher saw {served} requests")
    first, last = (min(s for s, _ in window), max(e for _, e in window)) if window else (t0, t1)
    return {
        "calls": totals["teacher_calls"],
        "accepted": totals["accepted"],
        "wall": t1 - t0,
        "cpu": cpu,
        "server_cpu": None if after["cpu_s"] is None else after["cpu_s"] - before["cpu_s"],
        "before_first": first - t0,
        "calling": last - first,
        "after_last": t1 - last,
    }


def bare_client(server, concurrency: int, calls: int) -> dict:
    """The reference ceiling: the plain openai client (chat.completions.create) in a loop, no labtax."""
    import openai

    system = "You write new tasks for a training dataset. Reply with one new task only."
    user = (
        "Skill: "
        + " ".join(["summarise the quarter's earnings for the staff"] * 12)
        + "\n\nExample tasks:\n1. ...\n2. ...\n3. ..."
    )

    async def go():
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="bench", timeout=60.0, max_retries=4)
        gate = asyncio.Semaphore(concurrency)

        async def one(i):
            async with gate:
                response = await client.chat.completions.create(
                    model="fake-teacher",
                    messages=[{"role": "system", "content": system}, {"role": "user", "content": f"{i} {user}"}],
                    n=1,
                    temperature=0.7,
                    max_tokens=96,
                    seed=i,
                )
                return response.choices[0].message.content

        try:
            await asyncio.gather(*(one(i) for i in range(min(calls, 2 * concurrency))))  # connections up
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(calls)))
            return {"calls": calls, "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
        finally:
            await client.close()

    return asyncio.run(go())


def samples_for(concurrency: int, leaves, rounds: int) -> int:
    """Samples per leaf so the run lasts about `rounds` latency periods at the limit."""
    per_leaf_calls = rounds * concurrency / len(leaves)
    return max(2, round(per_leaf_calls / calls_per_candidate(leaves)))


# ---------------------------------------------------------------- instructlab-sdg ---------------------------


def ilab_side(base_url: str) -> str:
    """Run the same leaves through instructlab-sdg against the same fake, or say exactly why it cannot."""
    import urllib.error
    import urllib.request

    python = ILAB_VENV / "bin" / "python"
    if not python.exists():
        return (
            f"not run: no throwaway venv at {ILAB_VENV} (create it with `python3 -m venv {ILAB_VENV} && "
            f"{ILAB_VENV}/bin/pip install instructlab-sdg`; it must not go into .venv: it pins docling, torch, transformers)"
        )
    probe = (
        "import importlib.metadata as m, importlib.util as u, pathlib, re, sys\n"
        "print('version', m.version('instructlab-sdg'))\n"
        "root = pathlib.Path(u.find_spec('instructlab').submodule_search_locations[0]) / 'sdg'\n"
        "src = (root / 'blocks' / 'llmblock.py').read_text()\n"
        "print('legacy', len(re.findall(r'client\\.completions\\.create\\(', src)))\n"
        "used = [p for p in root.glob('pipelines/**/*.yaml') if 'LLMMessagesBlock' in p.read_text()]\n"
        "print('chat_pipelines', len(used))\n"
        "from packaging.requirements import Requirement\n"
        "missing = []\n"
        "for spec in m.requires('instructlab-sdg') or []:\n"
        "    req = Requirement(spec)\n"
        "    if req.marker and not req.marker.evaluate({'extra': ''}):\n"
        "        continue\n"
        "    try:\n"
        "        m.version(req.name)\n"
        "    except m.PackageNotFoundError:\n"
        "        missing.append(req.name)\n"
        "print('missing', ', '.join(missing) or '-')\n"
        "try:\n"
        "    import instructlab.sdg\n"
        "    print('import ok')\n"
        "except Exception as exc:\n"
        "    print('import failed', type(exc).__name__, exc)\n"
    )
    out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=300)
    facts = dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)
    if "version" not in facts:
        return f"not run: instructlab-sdg is not installed in {ILAB_VENV} ({out.stderr.strip()[-300:]})"
    try:
        urllib.request.urlopen(urllib.request.Request(f"{base_url}/completions", data=b"{}", method="POST"), timeout=10)
        serves_legacy = True
    except urllib.error.HTTPError as exc:
        serves_legacy = exc.code != 404
    reasons = []
    if int(facts.get("legacy", 0)) and not int(facts.get("chat_pipelines", 0)) and not serves_legacy:
        reasons.append(
            f"instructlab-sdg {facts['version']} generates through the legacy completions endpoint only "
            f"(LLMBlock calls client.completions.create, {facts['legacy']} call sites; no shipped pipeline uses the "
            "chat LLMMessagesBlock), and the fake, like chat-only models, answers POST /v1/completions with 404"
        )
    if facts.get("import", "").startswith("failed"):
        reasons.append(
            f"`import instructlab.sdg` fails in {ILAB_VENV}: {facts['import'][len('failed ') :]} (its requirements not installed there: "
            f"{facts.get('missing', '?')}; docling pulls an unpinned torch with CUDA, and tesserocr builds against the tesseract C library)"
        )
    if reasons:
        return "not run: " + "; ".join(reasons)
    return "not run: instructlab-sdg imports and the server serves completions, but this bench has no driver for its pipelines yet"


# ---------------------------------------------------------------- main --------------------------------------


def best_of(repeats: int, run) -> dict:
    """The fastest of `repeats` runs: other work on a shared machine only ever slows a run down."""
    return min((run() for _ in range(repeats)), key=lambda r: r["wall"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", default="8,32,64")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=100, help="latency periods per run at the limit (run length)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per row; the fastest counts")
    parser.add_argument("--copies", type=int, default=4, help="copies of each of the 9 repo leaves")
    parser.add_argument("--server", choices=("process", "thread"), default="process")
    parser.add_argument(
        "--http10", action="store_true", help="close the connection after each request (as the tests' fake)"
    )
    parser.add_argument("--quick", action="store_true", help="shorter runs (rounds 40, one repeat)")
    parser.add_argument(
        "--profile", type=Path, help="cProfile each labtax run (wall clock) to PATH.c<concurrency>.prof"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.latency, args.http10)
    if args.quick:
        args.rounds, args.repeats = 40, 1
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    Server = ProcessServer if args.server == "process" else ThreadServer
    load = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="labtax-bench-tax-") as tmp:
        root = make_taxonomy(Path(tmp) / "taxonomy", args.copies)
        leaves = load_leaves(root, len(LEAVES) * args.copies)
        print(
            f"synthetic taxonomy: {len(leaves)} leaves ({args.copies} copies of the repo's {len(LEAVES)}), "
            f"{calls_per_candidate(leaves):.2f} calls per candidate; fake server in its own {args.server}, "
            f"{'HTTP/1.0 (connection per call)' if args.http10 else 'HTTP/1.1 keep-alive'}; "
            f"{os.cpu_count()} cores, load average {load:.1f} at start"
        )

        rows = []
        server = Server(args.latency, args.http10)
        try:
            run_once(leaves, server, 8, 2)  # warm-up: imports, first connections
            for conc in concurrencies:
                n = samples_for(conc, leaves, args.rounds)
                prof = args.profile.with_suffix(f".c{conc}.prof") if args.profile else None
                labtax = best_of(args.repeats, lambda: run_once(leaves, server, conc, n, prof))  # noqa: B023 - called at once
                bare = best_of(args.repeats, lambda: bare_client(server, conc, labtax["calls"]))  # noqa: B023 - called at once
                rows.append((conc, n, labtax, bare))
            ilab = ilab_side(server.base_url)
        finally:
            server.close()

        zero = Server(0.0, args.http10)
        try:
            run_once(leaves, zero, 8, 2)
            n32 = samples_for(32, leaves, args.rounds)
            z = best_of(args.repeats, lambda: run_once(leaves, zero, 32, n32))
            zb = best_of(args.repeats, lambda: bare_client(zero, 32, z["calls"]))
        finally:
            zero.close()
        alone = best_of(args.repeats, lambda: run_once(leaves, None, 32, n32))

    print(
        f"\nlatency {args.latency * 1000:.0f} ms; limit = concurrency / latency; labtax = the whole run_generation call "
        "(setup, calls, artifact writes); bare = the plain openai client making as many calls, nothing else"
    )
    print(
        f"{'conc':>4} {'n/leaf':>6} {'calls':>5} {'limit/s':>7} | {'labtax/s':>8} {'of limit':>8} {'CPU':>4} "
        f"{'setup s':>7} {'calls s':>7} {'writes s':>8} | {'bare/s':>6} {'of limit':>8} {'CPU':>4} | {'labtax/bare':>11}  verdict"
    )
    for conc, n, r, b in rows:
        limit = conc / args.latency
        rate, bare_rate = r["calls"] / r["wall"], b["calls"] / b["wall"]
        verdict = (
            (("PASS" if rate / limit >= TARGET else "FAIL") + f" (target {TARGET:.0%} of the limit)")
            if conc == 32
            else ""
        )
        print(
            f"{conc:>4} {n:>6} {r['calls']:>5} {limit:>7.0f} | {rate:>8.0f} {rate / limit:>8.1%} {r['cpu'] / r['wall']:>4.0%} "
            f"{r['before_first']:>7.2f} {r['calling']:>7.2f} {r['after_last']:>8.2f} | {bare_rate:>6.0f} {bare_rate / limit:>8.1%} "
            f"{b['cpu'] / b['wall']:>4.0%} | {rate / bare_rate:>11.0%}  {verdict}"
        )

    print("\nper-sample overhead (CPU of the client process; the server's latency and CPU are not in it):")
    print(
        f"  labtax alone (in-process scripted teacher, no HTTP): {alone['cpu'] / alone['accepted'] * 1000:.2f} ms per accepted sample, "
        f"{alone['cpu'] / alone['calls'] * 1000:.2f} ms per call"
    )
    print(
        f"  labtax + openai client over HTTP (latency 0, concurrency 32): {z['cpu'] / z['accepted'] * 1000:.2f} ms per accepted sample, "
        f"{z['cpu'] / z['calls'] * 1000:.2f} ms per call; {z['calls'] / z['wall']:.0f} calls/s end to end"
    )
    print(
        f"  bare openai client over HTTP (latency 0, concurrency 32): {zb['cpu'] / zb['calls'] * 1000:.2f} ms per call; "
        f"{zb['calls'] / zb['wall']:.0f} calls/s end to end"
    )
    if z["server_cpu"] is not None:
        print(
            f"  fake server: {z['server_cpu'] / z['calls'] * 1000:.2f} ms CPU per call (its own ceiling on one core: ~{z['calls'] / z['server_cpu']:.0f} calls/s)"
        )
    need = 1000 * args.latency / (32 * TARGET)
    print(
        f"  {TARGET:.0%} of the limit at concurrency 32 needs <= {need:.2f} ms of client CPU per call on one free core; "
        f"labtax + client spend {z['cpu'] / z['calls'] * 1000:.2f} (ceiling ~{z['calls'] / z['cpu']:.0f} calls/s), "
        f"the bare client {zb['cpu'] / zb['calls'] * 1000:.2f}"
    )
    print(f"\ninstructlab-sdg, same leaves, same server: {ilab}")


if __name__ == "__main__":
    main()
