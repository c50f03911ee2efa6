"""Make the graded set's candidates: what the embedded teacher really writes for each leaf, before any judge.

Runs labtax's own generation (pipelines, prompts, parsers, cheap checks, self-consistency, dedup) with the
embedded SmolLM2-135M teacher over this repository's leaves and InstructLab's (../shared/corpus), with a
pass-through judge that answers every judge stage "3" and cannot score. So every candidate the teacher
wrote ends in the file: accepted (the gate's judges and likelihood checks never ran) or rejected by a
check that does not need a judge (parse failure, truncated, duplicate, inconsistent...). Labels are
added by reading each row (bench/graded/GUIDE.md); `labtax vet` then runs the real gate over them.

    python bench/graded/make_candidates.py --per-leaf 17 --out bench/graded/candidates.jsonl

The teacher samples with a seed per candidate, so the same command writes the same candidates.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
INSTRUCTLAB = SHARED / "corpus" / "instructlab-taxonomy" / "head"
BUNDLE = SHARED / "corpus" / "knowledge-docs" / "Summit_knowledge.bundle"
SUMMIT_URL = "https://github.com/juliadenham/Summit_knowledge"
SOURCES = {"labtax": REPO, "instructlab": INSTRUCTLAB}


class PassThroughJudge:
    """Says 3 to every judge stage, gives no log-probabilities and cannot score: the candidates as written."""

    name = "pass-through"
    model = "pass-through"

    async def complete(self, messages, *, n=1, temperature=0.7, max_tokens=256, seed=None, top_logprobs=0):
        from labtax.teacher.base import Completion

        return [Completion("3", "stop", 0, 0, None) for _ in range(n)]

    async def aclose(self) -> None:
        pass


def split_of(leaf: str) -> str:
    """tune or heldout, by a hash of the leaf path: a leaf's candidates are all on one side."""
    return "heldout" if int(hashlib.sha256(leaf.encode()).hexdigest(), 16) % 2 else "tune"


def route_documents(workdir: Path) -> None:
    """InstructLab's knowledge leaves name their document repository on GitHub: point that URL at a clone of
    the shared bundle with git's own URL rewriting, as a user with a mirror would."""
    mirror = workdir / "Summit_knowledge.git"
    if not mirror.exists():
        subprocess.run(["git", "clone", "-q", "--bare", str(BUNDLE), str(mirror)], check=True)
    config = workdir / "gitconfig"
    config.write_text(f'[url "file://{mirror}"]\n\tinsteadOf = {SUMMIT_URL}.git\n\tinsteadOf = {SUMMIT_URL}\n')
    os.environ["GIT_CONFIG_GLOBAL"] = str(config)


async def generate(root: Path, out: Path, per_leaf: int, teacher) -> None:
    from labtax.config import load_config
    from labtax.generate.run import Settings, run_generation
    from labtax.lint.engine import lint
    from labtax.select import select

    result = lint(select(root), load_config(root))
    leaves = [leaf for leaf in result.leaves if leaf is not None]
    settings = Settings(num_samples=per_leaf, max_attempts=1, calibrate=False)
    await run_generation(leaves, teacher, out, settings, judge=PassThroughJudge())


def collect(source: str, out: Path) -> list[dict]:
    """Every candidate of the run, as labtax wrote it (a sample or a rejection), with empty label fields."""
    rows = []
    for folder in sorted({p.parent for p in out.rglob("leaf.json")}):
        for name, outcome in (("samples.jsonl", "accepted"), ("rejected.jsonl", "rejected")):
            path = folder / name
            if not path.is_file():
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                rows.append(
                    {
                        "source": source,
                        "leaf": record["leaf"],
                        "split": split_of(f"{source}:{record['leaf']}"),
                        "outcome": outcome,  # what labtax's judge-free checks did with it
                        "record": record,
                        "label": "",  # good | bad (bench/graded/GUIDE.md)
                        "bad_kind": "",
                        "note": "",
                    }
                )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-leaf", type=int, default=17)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "graded" / "candidates.jsonl")
    parser.add_argument("--work", type=Path, default=None, help="keep the runs' output folders here")
    parser.add_argument("--sources", default=",".join(SOURCES), help="which taxonomies, comma-separated")
    parser.add_argument(
        "--collect-only",
        action="store_true",
        help="write what --work already holds (the leaves finished so far), no teacher call; a run stopped midway "
        "goes on from its call cache with the same --work",
    )
    args = parser.parse_args()
    sources = {name: SOURCES[name] for name in args.sources.split(",")}
    from labtax.teacher.embedded import EmbeddedTeacher

    work = args.work or Path(tempfile.mkdtemp(prefix="labtax-graded-"))
    work.mkdir(parents=True, exist_ok=True)
    route_documents(work)
    started = time.monotonic()
    rows = []
    for source, root in sources.items():
        if not args.collect_only:
            teacher = EmbeddedTeacher()
            try:
                asyncio.run(generate(root, work / source, args.per_leaf, teacher))
            finally:
                teacher.close()
        rows += collect(source, work / source)
        print(f"{source}: {len(rows)} candidates so far, {time.monotonic() - started:.0f} s", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    print(f"wrote {len(rows)} candidates to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
