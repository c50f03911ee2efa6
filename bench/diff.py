"""Benchmark `labtax diff` against plain `git diff --name-only` on a 10,000-leaf, 2,000-commit repository.

    .venv/bin/python bench/diff.py [--leaves 10000] [--commits 2000] [--runs 7]

The repository is written with `git fast-import` into a temporary folder and deleted afterwards.
History: one commit with every leaf (and its attribution.txt) on main; main then gains small commits,
a `feature` branch forks about half-way and changes leaves (modify, add, rename, move between trees,
delete, an attribution and an in-repo document a knowledge leaf reads) while main goes on, with merge
commits, after the fork point. Both tools answer the same question: what changed on `feature`
since it forked from `main` (`git diff --name-only main...feature` is the physical limit: one tree
diff, no working tree, no Python). The answer labtax gives is checked against the known changes.
Target: labtax within 3x of plain git and under 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LABTAX = [str(Path(sys.executable).parent / "labtax")]
TREES = ("compositional_skills", "foundational_skills", "knowledge")
SMALL_COMMITS = 10
GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GITHUB_BASE_REF": "",
}


def leaf_path(i: int) -> str:
    tree = TREES[i % 3]
    return f"{tree}/area_{i % 97}/topic_{i % 13}/leaf_{i}/qna.yaml"


def skill(i: int, edit: int = 0) -> str:
    examples = "".join(
        f"  - question: What is {i} plus {k}?\n    answer: {i} plus {k} is {i + k}.\n" for k in range(1, 6)
    )
    return f"version: 3\ncreated_by: bench\ntask_description: Add numbers to {i} (edit {edit}).\nseed_examples:\n{examples}"


def knowledge(i: int) -> str:
    qas = "".join(f"      - question: Question {j} about {i}?\n        answer: Answer {j}.\n" for j in range(3))
    examples = "".join(
        f"  - context: Context {k} of document {i}.\n    questions_and_answers:\n{qas}" for k in range(5)
    )
    return f"version: 3\ncreated_by: bench\ndomain: d\ndocument_outline: Outline {i}.\nseed_examples:\n{examples}document:\n  repo: ./documents/doc_{i % 1000}\n  commit: HEAD\n  patterns:\n    - '*.md'\n"


def text_of(i: int, edit: int = 0) -> str:
    return knowledge(i) if leaf_path(i).startswith("knowledge/") else skill(i, edit)


class Stream:
    """A git fast-import stream: commits with inline file contents."""

    def __init__(self):
        self.parts: list[bytes] = []
        self.mark = 0
        self.clock = 1_700_000_000

    def commit(
        self, branch: str, message: str, ops: list[tuple], parent: int | None = None, merge: int | None = None
    ) -> int:
        self.mark += 1
        self.clock += 60
        out = [f"commit refs/heads/{branch}\nmark :{self.mark}\ncommitter bench <b@x> {self.clock} +0000\n".encode()]
        out.append(f"data {len(message)}\n{message}\n".encode())
        if parent:
            out.append(f"from :{parent}\n".encode())
        if merge:
            out.append(f"merge :{merge}\n".encode())
        for op in ops:
            if op[0] == "M":
                data = op[2].encode()
                out.append(f"M 100644 inline {op[1]}\ndata {len(data)}\n".encode() + data + b"\n")
            elif op[0] == "D":
                out.append(f"D {op[1]}\n".encode())
            elif op[0] == "R":
                out.append(f'R "{op[1]}" "{op[2]}"\n'.encode())
        self.parts.append(b"".join(out))
        return self.mark


def attribution(i: int) -> str:
    return f"Title of work: leaf {i}\nLink to work: here\nLicense of the work: CC0\nCreator names: bench\n"


def build(root: Path, leaves: int, commits: int) -> dict[str, set]:
    """Write the repository; return the leaves `feature` changed, by status (what labtax must answer)."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True, env=GIT_ENV)
    s = Stream()
    ops = []
    for i in range(leaves):
        ops += [
            ("M", leaf_path(i), text_of(i)),
            ("M", leaf_path(i).replace("qna.yaml", "attribution.txt"), attribution(i)),
        ]
    ops += [("M", f"documents/doc_{d}/doc.md", f"# Document {d}\n") for d in range(1000)]
    main = s.commit("main", "all leaves", ops)
    small = commits - 1
    fork_at, feature_commits = small // 2, small // 5
    main_after = small - fork_at - feature_commits - SMALL_COMMITS
    skills = [i for i in range(leaves) if not leaf_path(i).startswith("knowledge/")]
    for n in range(fork_at):  # main before the fork: one leaf edited per commit
        i = skills[(n * 7) % len(skills)]
        main = s.commit("main", f"main {n}", [("M", leaf_path(i), skill(i, n + 1))], parent=main)
    fork = main
    feature, expect = main, {"added": set(), "modified": set(), "renamed": set(), "deleted": set()}
    pool = iter(skills[len(skills) // 2 :])  # leaves main never touches
    for n in range(feature_commits):
        kind, i = n % 10, next(pool)
        path = leaf_path(i)
        if kind < 5:
            op, expect["modified"] = [("M", path, skill(i, 1000 + n))], expect["modified"] | {path}
        elif kind < 7:
            new = f"compositional_skills/new/leaf_{n}/qna.yaml"
            op, expect["added"] = (
                [("M", new, skill(100_000 + n)), ("M", new.replace("qna.yaml", "attribution.txt"), attribution(n))],
                expect["added"] | {new},
            )
        elif kind == 7:  # rename, every other one into another tree
            new = f"{TREES[n % 2]}/moved/leaf_{i}/qna.yaml"
            op = [("R", path.rsplit("/", 1)[0], new.rsplit("/", 1)[0])]
            expect["renamed"].add(new)
        elif kind == 8:
            op, expect["deleted"] = [("D", path.rsplit("/", 1)[0])], expect["deleted"] | {path}
        else:
            op, expect["modified"] = (
                [("M", path.replace("qna.yaml", "attribution.txt"), attribution(i) + f"edit {n}\n")],
                expect["modified"] | {path},
            )
        feature = s.commit("feature", f"feature {n}", op, parent=feature)
    feature = s.commit(
        "feature", "edit document 3", [("M", "documents/doc_3/doc.md", "# Document 3, revised\n")], parent=feature
    )
    small, expect_small = fork, {"added": set(), "modified": set(), "renamed": set(), "deleted": set()}
    for n in range(SMALL_COMMITS):  # a typical pull request: a few leaves edited, one added
        i = next(pool)
        if n == 0:
            new = "knowledge/new/small_leaf/qna.yaml"
            ops_ = [("M", new, knowledge(7)), ("M", new.replace("qna.yaml", "attribution.txt"), attribution(7))]
            expect_small["added"].add(new)
        else:
            ops_ = [("M", leaf_path(i), skill(i, 9000 + n))]
            expect_small["modified"].add(leaf_path(i))
        small = s.commit("small", f"small {n}", ops_, parent=small)
    expect["modified"] |= {
        leaf_path(i) for i in range(leaves) if leaf_path(i).startswith("knowledge/") and i % 1000 == 3
    }
    side = None
    for n in range(main_after - 1):  # main after the fork, with a side branch merged in every 50 commits
        i = skills[(n * 11) % (len(skills) // 2)]
        if n % 50 == 49 and side:
            main = s.commit("main", f"merge side {n}", [], parent=main, merge=side)
            side = None
        elif n % 50 >= 45:
            side = s.commit("side", f"side {n}", [("M", leaf_path(i), skill(i, 5000 + n))], parent=side or main)
        else:
            main = s.commit("main", f"main after fork {n}", [("M", leaf_path(i), skill(i, 3000 + n))], parent=main)
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, input=b"".join(s.parts), check=True, env=GIT_ENV)
    subprocess.run(["git", "checkout", "-q", "-f", "feature"], cwd=root, check=True, env=GIT_ENV)
    return {"feature": expect, "small": expect_small}


def median_ms(cmd: list[str], root: Path, runs: int) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=GIT_ENV)
        times.append((time.perf_counter() - start) * 1000)
        if proc.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr}")
        out = proc.stdout
    return statistics.median(times), out


def in_process_ms(root: Path, runs: int, base: str) -> tuple[float, list]:
    sys.path.insert(0, str(REPO / "cli"))
    from labtax.changes.leaves import changed_leaves

    os.environ["GITHUB_BASE_REF"] = ""
    changed_leaves(root, base)  # imports warm
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        changes = changed_leaves(root, base)[0]
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), changes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=10_000)
    parser.add_argument("--commits", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="labtax-bench-diff-") as tmp:
        root = Path(tmp) / "taxonomy"
        start = time.perf_counter()
        expected = build(root, args.leaves, args.commits)
        count = subprocess.run(
            ["git", "rev-list", "--count", "--all"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        print(
            f"built {args.leaves} leaves, {count} commits in {time.perf_counter() - start:.1f}s (in {tmp}, removed afterwards)"
        )
        subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, check=True
        )  # settle the index, as in any used clone

        rows, ok, verdicts = [], True, []
        for branch, expect in (("small", expected["small"]), ("feature", expected["feature"])):
            subprocess.run(["git", "checkout", "-q", "-f", branch], cwd=root, check=True, env=GIT_ENV)
            size = ", ".join(f"{len(v)} {k}" for k, v in expect.items() if v)
            git_ms, git_out = median_ms(["git", "diff", "--name-only", f"main...{branch}"], root, args.runs)
            rows.append((f"[{branch}: {size}]", None, None, None))
            rows.append(("  git diff --name-only main...HEAD", git_ms, git_ms, len(git_out.split())))
            cli_ms, _ = median_ms([*LABTAX, "diff", "--base", "main", "--include-deleted"], root, args.runs)
            rows.append(("  labtax diff --base main (CLI, end to end)", cli_ms, git_ms, None))
            json_ms, out = median_ms(
                [*LABTAX, "diff", "--base", "main", "--include-deleted", "--format", "json"], root, args.runs
            )
            rows.append(("  labtax diff --base main --format json", json_ms, git_ms, len(json.loads(out)["leaves"])))
            lib_ms, changes = in_process_ms(root, args.runs, "main")
            rows.append(("  select.changed_leaves() in process", lib_ms, git_ms, len(changes)))
            got = {status: {c.path for c in changes if c.status == status} for status in expect}
            if got != expect:
                ok = False
                for status in expect:
                    print(
                        f"  {branch} {status}: missing {sorted(expect[status] - got[status])[:5]} extra {sorted(got[status] - expect[status])[:5]}"
                    )
            verdicts.append((branch, cli_ms, git_ms, lib_ms))
        status_ms, _ = median_ms(["git", "status", "--porcelain", "--untracked-files=all"], root, args.runs)
        rows.append(("[floors]", None, None, None))
        rows.append(("  git status --porcelain -uall (working tree walk)", status_ms, None, None))
        start_ms, _ = median_ms([sys.executable, "-c", "import click, git"], root, args.runs)
        rows.append(("  python -c 'import click, git'", start_ms, None, None))
        (root / "compositional_skills/untracked/leaf").mkdir(parents=True)
        (root / "compositional_skills/untracked/leaf/qna.yaml").write_text(skill(999_999))
        (root / leaf_path(5)).unlink()
        ut_ms, _ = median_ms([*LABTAX, "diff", "--base", "main"], root, args.runs)
        rows.append(("  labtax diff (feature) + untracked leaf + deleted one", ut_ms, None, None))

        width = max(len(r[0]) for r in rows)
        print(f"\n{'command':<{width}}  {'median ms':>9}  {'x git':>6}  {'files/leaves':>12}")
        for name, ms, ref, n in rows:
            if ms is None:
                print(name)
                continue
            ratio = f"{ms / ref:.1f}" if ref else ""
            print(f"{name:<{width}}  {ms:>9.1f}  {ratio:>6}  {'' if n is None else n:>12}")
        print(
            f"\nmedian of {args.runs} runs; labtax's answer {'matches the known changes' if ok else 'DIFFERS from the known changes'}"
        )
        for branch, cli_ms, git_ms, lib_ms in verdicts:
            met = cli_ms <= 3 * git_ms and cli_ms < 1000
            floor = git_ms + status_ms  # git answering the same question: committed range + working tree
            print(
                f"{branch}: CLI {cli_ms:.0f} ms = {cli_ms / git_ms:.1f}x git diff (target 3x and 1 s: {'met' if met else 'not met'}), "
                f"{cli_ms / floor:.1f}x git diff + git status; in process {lib_ms / floor:.1f}x git diff + git status"
            )
        shutil.rmtree(root, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
