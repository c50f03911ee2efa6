"""Benchmark: `labtax lint` against InstructLab's schema package (instructlab-schema 0.4.2), side by side.

Builds a realistic taxonomy of N valid leaves (compositional skills, foundational skills and knowledge v3,
2-6 KB each, with attribution.txt) in a temp folder, then measures in one run:

  * whole tree: `labtax lint --format json` (a fresh process; default worker processes, and -j 1) versus
    a fresh process that runs InstructLab's `TaxonomyParser(schema_version=0).parse(path)` over every file
    (yamllint as a subprocess per file, as InstructLab does; yq only runs on schema errors, and the
    generated files have none);
  * one file: `labtax lint <file>` versus InstructLab parsing that file, each the median of fresh processes;
  * `python -X importtime` of `labtax lint <file>`: where the start-up time goes.

Wall time is what the targets are about; CPU time (user+sys of the measured processes) is printed too,
because on a shared machine other people's jobs stretch wall time. labtax's bytecode is compiled first
(what `pip install` does), since PYTHONDONTWRITEBYTECODE would otherwise recompile it on every run.

Usage: .venv/bin/python bench/lint.py [--leaves N] [--quick]
Targets (issue 2): whole tree >= 20x faster than InstructLab; one file < 150 ms wall.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

BIN = Path(sys.executable).parent
LABTAX = shutil.which("labtax", path=str(BIN)) or "labtax"
WHOLE_TARGET, SINGLE_TARGET_MS = 20.0, 150.0

WORDS = [
    "river",
    "mountain",
    "signal",
    "protein",
    "engine",
    "harbor",
    "lantern",
    "orbit",
    "pattern",
    "ledger",
    "canyon",
    "meadow",
    "theorem",
    "circuit",
    "compass",
    "glacier",
    "harvest",
    "island",
    "journal",
    "kernel",
    "lattice",
    "marble",
    "nebula",
    "oxygen",
    "pillar",
    "quartz",
    "rhythm",
    "saddle",
    "timber",
    "velvet",
    "willow",
    "anchor",
    "beacon",
    "cobalt",
    "delta",
    "ember",
    "falcon",
    "garnet",
    "hollow",
    "ivory",
    "jasper",
    "kindle",
    "lumen",
    "mosaic",
    "nectar",
    "onyx",
    "prairie",
    "quiver",
    "ripple",
    "summit",
    "thistle",
    "umbra",
    "vortex",
    "wander",
    "yarrow",
    "zephyr",
    "archive",
    "balance",
    "channel",
    "density",
    "element",
    "fiction",
    "gradient",
    "horizon",
    "insight",
    "junction",
    "keystone",
    "language",
    "measure",
    "network",
    "outline",
    "passage",
    "question",
    "reason",
    "section",
    "texture",
    "unit",
    "variable",
    "weather",
    "analysis",
    "budget",
    "climate",
    "culture",
    "design",
    "economy",
    "energy",
    "history",
    "industry",
    "method",
    "policy",
]
DOMAINS = ("science", "history", "arts", "finance", "geography", "technology", "health", "language", "law", "sports")
TOPICS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "sigma")


def _sentence(rng: random.Random, n: int, topic: str) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    words.insert(rng.randrange(len(words)), topic)
    return " ".join(words).capitalize() + "."


def _paragraph(rng: random.Random, words: int, topic: str) -> str:
    out, total = [], 0
    while total < words:
        n = max(3, min(rng.randint(8, 16), words - total))
        out.append(_sentence(rng, n, topic))
        total += n + 1
    return " ".join(out)


def _block(text: str, indent: int) -> str:
    """A YAML literal block scalar, wrapped like contributors write them."""
    pad = " " * indent
    lines = textwrap.wrap(text, 72)
    return "|\n" + "".join(f"{pad}{line}\n" for line in lines)


def _skill(rng: random.Random, i: int, topic: str, grounded: bool) -> str:
    out = ["---\n", "version: 3\n", f"created_by: contributor{i % 97}\n"]
    out.append(f"task_description: {_block(_paragraph(rng, 30, topic), 2)}")
    out.append("seed_examples:\n")
    for j in range(rng.randint(5, 7)):
        if grounded:
            out.append(f"  - context: {_block(_paragraph(rng, rng.randint(30, 60), topic), 6)}")
            out.append(f"    question: {_block(f'Leaf {i} example {j}: ' + _paragraph(rng, 12, topic), 6)}")
        else:
            out.append(f"  - question: {_block(f'Leaf {i} example {j}: ' + _paragraph(rng, 15, topic), 6)}")
        out.append(f"    answer: {_block(_paragraph(rng, rng.randint(20, 45), topic), 6)}")
    return "".join(out)


def _knowledge(rng: random.Random, i: int, topic: str) -> str:
    out = ["---\n", "version: 3\n", f"created_by: contributor{i % 97}\n", f"domain: {topic.capitalize()} studies\n"]
    out.append("seed_examples:\n")
    for j in range(5):
        out.append(f"  - context: {_block(_paragraph(rng, rng.randint(30, 50), topic), 6)}")
        out.append("    questions_and_answers:\n")
        for k in range(3):
            out.append(
                f"      - question: {_block(f'Leaf {i} passage {j} question {k}: ' + _paragraph(rng, 5, topic), 10)}"
            )
            out.append(f"        answer: {_block(_paragraph(rng, rng.randint(6, 12), topic), 10)}")
    out.append(f"document_outline: {_block(_paragraph(rng, 20, topic), 2)}")
    sha = f"{rng.getrandbits(160):040x}"
    out.append(
        f'document:\n  repo: https://github.com/example/{topic}-docs\n  commit: {sha}\n  patterns:\n    - "{topic}/*.md"\n'
    )
    return "".join(out)


def build_taxonomy(root: Path, leaves: int, seed: int = 2) -> list[str]:
    """N valid leaves: 45% compositional (half grounded), 15% foundational, 40% knowledge."""
    rng = random.Random(seed)
    paths = []
    for i in range(leaves):
        topic, domain = rng.choice(TOPICS), rng.choice(DOMAINS)
        roll = i % 20
        if roll < 9:
            tree, text = "compositional_skills", _skill(rng, i, topic, grounded=roll % 2 == 0)
        elif roll < 12:
            tree, text = "foundational_skills", _skill(rng, i, topic, grounded=False)
        else:
            tree, text = "knowledge", _knowledge(rng, i, topic)
        rel = f"{tree}/{domain}/{topic}/leaf_{i:05d}/qna.yaml"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        (path.parent / "attribution.txt").write_text(
            f"Title of work: {topic} {i}\nLink to work: https://example.org/{i}\nLicense of the work: CC BY-SA 4.0\nCreator names: contributor{i % 97}\n",
            encoding="utf-8",
        )
        paths.append(rel)
    return paths


# ---------------------------------------------------------------- measuring

INSTRUCTLAB_SCRIPT = """
import sys, time
t0 = time.perf_counter()
from instructlab.schema.taxonomy import TaxonomyParser
parser = TaxonomyParser(schema_version=0, message_format="standard")
errors = warnings = 0
for path in sys.argv[1:] or sys.stdin.read().split():
    taxonomy = parser.parse(path)
    errors += taxonomy.errors
    warnings += taxonomy.warnings
print("RESULT", errors, warnings, time.perf_counter() - t0)
"""


def instructlab_available() -> bool:
    try:
        import instructlab.schema.taxonomy  # noqa: F401
    except ImportError:
        return False
    return True


def _env() -> dict:
    """The venv's bin first on PATH, so InstructLab finds the `yamllint` executable it shells out to."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(
    cmd: list[str], cwd: Path, env: dict, stdin: str | None = None
) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall seconds, CPU seconds (the process and everything it ran), and the finished process."""
    cpu, start = _cpu(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, input=stdin, capture_output=True, text=True)
    return time.perf_counter() - start, _cpu() - cpu, proc


def labtax_tree(root: Path, env: dict, runs: int, *extra: str) -> tuple[float, float, dict]:
    """Median wall and CPU seconds of `labtax lint --format json` over the whole tree, and its report."""
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu, proc = _timed([LABTAX, "lint", "--format", "json", *extra], root, env)
        if proc.returncode not in (0, 1):
            sys.exit(f"labtax lint failed ({proc.returncode}):\n{proc.stderr}")
        walls.append(wall)
        cpus.append(cpu)
    return statistics.median(walls), statistics.median(cpus), json.loads(proc.stdout)


def instructlab_files(root: Path, files: list[str]) -> tuple[float, float, int, int]:
    wall, cpu, proc = _timed([sys.executable, "-c", INSTRUCTLAB_SCRIPT], root, _env(), stdin="\n".join(files))
    match = re.search(r"^RESULT (\d+) (\d+)", proc.stdout, re.M)
    if not match:
        sys.exit(f"InstructLab run failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return wall, cpu, int(match[1]), int(match[2])


def median_ms(run, runs: int) -> tuple[float, float, float]:
    """Median wall ms, fastest wall ms and median CPU ms of `run()` -> (wall s, cpu s)."""
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = run()
        walls.append(wall * 1000)
        cpus.append(cpu * 1000)
    return statistics.median(walls), min(walls), statistics.median(cpus)


def labtax_one(root: Path, file: str, env: dict):
    wall, cpu, proc = _timed([LABTAX, "lint", file], root, env)
    if proc.returncode != 0:
        sys.exit(f"labtax lint {file} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return wall, cpu


def import_breakdown(root: Path, file: str, env: dict, top: int) -> list[tuple[str, float]]:
    """Cumulative import time (ms) of the top-level modules `labtax lint <file>` imports."""
    cmd = [
        sys.executable,
        "-X",
        "importtime",
        "-c",
        "import sys; from labtax.main import main; sys.argv = ['labtax', *sys.argv[1:]]; main()",
        "lint",
        file,
    ]
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    totals: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if match and len(match[2]) == 1:  # top level: imported directly, not by another module
            name = match[3].split(".")[0] if not match[3].startswith("labtax") else match[3]
            totals[name] = totals.get(name, 0.0) + int(match[1]) / 1000
    return sorted(totals.items(), key=lambda kv: -kv[1])[:top]


def row(*cells, widths=(44, 14, 14, 18)) -> str:
    return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--leaves", type=int, default=None, help="leaves in the generated taxonomy (default 2000; 200 with --quick)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="200 leaves and fewer repeats: a smoke run, not the target measurement"
    )
    parser.add_argument(
        "--keep", type=Path, default=None, help="build the taxonomy here and keep it (default: a temp folder, removed)"
    )
    args = parser.parse_args(argv)
    leaves = args.leaves or (200 if args.quick else 2000)
    single_runs = 5 if args.quick else 15
    il_single_runs = 3 if args.quick else 7

    have_instructlab = instructlab_available()
    if not have_instructlab:
        print("NOTE: instructlab-schema is NOT installed, so there is no reference side to compare with.")
        print("      Install it: .venv/bin/pip install instructlab-schema==0.4.2   (or: pip install -e '.[bench]')\n")

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="labtax-bench-"))
    try:
        root = workdir / "taxonomy"
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        files = build_taxonomy(root, leaves)
        sizes = [(root / f).stat().st_size for f in files]
        print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(
            f"taxonomy: {leaves} leaves in {root}, {sum(sizes) / 1024:.0f} KB, {min(sizes)}-{max(sizes)} bytes per qna.yaml; "
            f"{os.cpu_count()} CPUs; python {sys.version.split()[0]}\n"
        )

        env = _env()
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(Path(__import__("labtax").__file__).parent)], check=True
        )
        runs = 1 if args.quick else 3
        wall, cpu, report = labtax_tree(root, env, runs)
        if report["files"] != leaves or report["errors"] or report["warnings"]:
            print(
                f"WARNING: labtax reports {report['errors']} errors, {report['warnings']} warnings on {report['files']} files "
                f"(expected a clean tree of {leaves}): {report['findings'][:3]}"
            )
        wall1, _cpu1, _ = labtax_tree(root, env, runs, "--jobs", "1")

        il = il_cpu = None
        if have_instructlab:
            il, il_cpu, il_errors, il_warnings = instructlab_files(root, files)
            if il_errors or il_warnings:
                print(f"WARNING: InstructLab reports {il_errors} errors, {il_warnings} warnings (expected none)")

        sample = files[len(files) // 2]
        one, one_fastest, one_cpu = median_ms(lambda: labtax_one(root, sample, env), single_runs)
        il_one = il_one_cpu = None
        if have_instructlab:
            il_one, _, il_one_cpu = median_ms(lambda: instructlab_files(root, [sample])[:2], il_single_runs)

        def ratio(ours, theirs):
            return f"{theirs / ours:.1f}x" if theirs else "n/a"

        na = "not installed"
        print(row("measurement", "labtax", "InstructLab", "InstructLab/labtax"))
        print(row("-" * 44, "-" * 14, "-" * 14, "-" * 18))
        print(row(f"whole tree, {leaves} leaves, wall s", f"{wall:.2f}", f"{il:.2f}" if il else na, ratio(wall, il)))
        print(row("  same, CPU s", f"{cpu:.2f}", f"{il_cpu:.2f}" if il_cpu else na, ratio(cpu, il_cpu)))
        print(row("  labtax --jobs 1, wall s", f"{wall1:.2f}", f"{il:.2f}" if il else na, ratio(wall1, il)))
        print(
            row(
                f"one file, median of {single_runs}, wall ms",
                f"{one:.0f}",
                f"{il_one:.0f}" if il_one else na,
                ratio(one, il_one),
            )
        )
        print(
            row(
                "  same, CPU ms",
                f"{one_cpu:.0f}",
                f"{il_one_cpu:.0f}" if il_one_cpu else na,
                ratio(one_cpu, il_one_cpu),
            )
        )
        print(
            f"\nload average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (other jobs on this machine stretch wall times)\n"
        )
        met = il is not None and il / wall >= WHOLE_TARGET
        print(
            f"target whole tree >= {WHOLE_TARGET:.0f}x faster: "
            + ("n/a" if il is None else f"{il / wall:.1f}x {'MET' if met else 'MISSED'}")
        )
        print(
            f"target one file < {SINGLE_TARGET_MS:.0f} ms wall: {one:.0f} ms median, {one_fastest:.0f} fastest, {'MET' if one < SINGLE_TARGET_MS else 'MISSED'}"
        )
        print()
        print("imports of `labtax lint <file>` (python -X importtime, cumulative ms, top level):")
        for name, ms in import_breakdown(root, sample, env, 12):
            print(f"  {name:<36}{ms:8.1f}")
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
