"""bench/judge.py: does the quality gate separate good data from bad? Measured, per corruption type.

A labelled set from real seeds (this repository's skill leaves and InstructLab's in ../shared/corpus): each
seed pair is a good candidate; systematic corruptions of it are bad ones. Every candidate goes through the
gate exactly as generation runs it (cheap checks, then the leaf's pair judge with the leaf's own few-shot
examples), on the embedded teacher or any endpoint (`--base-url`). Printed per corruption type: how often
the gate rejects it; overall: good acceptance, balanced accuracy and ROC AUC of the judge's verdict.

Where the judge returns log-probabilities (an endpoint that supports them), the verdict is the probability
P(score >= pass) read from them, as generation reads it (generate/gate/scores.py): a row is accepted at
P >= 0.5 (the uncalibrated threshold) and the ROC AUC is over the probabilities; elsewhere over the sampled
score. `--judge-model` / `--judge-base-url` measure a separate judge, as `labtax generate` takes them.

    .venv/bin/python bench/judge.py [--base-url URL --model NAME] [--judge-model NAME [--judge-base-url URL]]
                                    [--leaves N] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "cli"))
CORPUS = REPO.parent / "shared" / "corpus" / "instructlab-taxonomy" / "head"

REFUSAL = "I'm sorry, I can't help with that."


def corrupt(item: dict, same_leaf: list[dict], other_leaf: list[dict]) -> dict[str, str]:
    """The bad twins of one good pair, by kind (the rows of the issue's table and a few more)."""
    import re

    answer = item["answer"]
    out = {}
    same = [o["answer"] for o in same_leaf if o["answer"] != answer]
    if same:
        out["same_leaf_answer"] = same[0]
    if other_leaf:
        out["other_leaf_answer"] = other_leaf[0]["answer"]
    changed = re.sub(r"\d+(?:\.\d+)?", lambda m: str(int(float(m.group()) * 3 + 7)), answer)
    if changed != answer:
        out["numbers_changed"] = changed
    words = answer.split()
    if len(words) >= 8:
        out["quarter_answer"] = " ".join(words[: len(words) // 4])
    out["refusal"] = REFUSAL
    out["repeated_text"] = " ".join([" ".join(words[:6])] * 8)
    out["other_language"] = (
        "La respuesta correcta depende del contexto y de los datos que se indican en la pregunta anterior."
    )
    return out


def skill_leaves(limit: int) -> list:
    from labtax.taxonomy.loader import LoadProblem, load_leaf

    leaves = []
    for root in (REPO, CORPUS):
        for path in sorted(root.glob("compositional_skills/**/qna.yaml")) + sorted(
            root.glob("foundational_skills/**/qna.yaml")
        ):
            try:
                leaf = load_leaf(root, path.relative_to(root).as_posix())
            except LoadProblem:
                continue
            leaves.append(leaf)
    return leaves[:limit]


async def measure(args) -> dict:
    from labtax.config import load_config
    from labtax.generate import seeds
    from labtax.generate.cache import CallCache
    from labtax.generate.pipelines import pipeline_for
    from labtax.generate.pipelines.common import judge_examples, mismatched
    from labtax.generate.pipelines.prompts import load as load_prompts
    from labtax.generate.pipelines.runner import StageRunner
    from labtax.teacher.resolve import describe_teacher, make_judge, make_teacher

    config = load_config(REPO)
    teacher = make_teacher(config, base_url=args.base_url, model=args.model, concurrency=8)
    info = describe_teacher(config, base_url=args.base_url, model=args.model)
    judge = make_judge(config, info, base_url=args.judge_base_url, model=args.judge_model, concurrency=8) or teacher
    cache = CallCache(Path(args.cache))
    rows: list[dict] = []
    leaves = skill_leaves(args.leaves)
    try:
        for n, leaf in enumerate(leaves):
            pipeline = pipeline_for(leaf)
            runner = StageRunner(teacher, cache, load_prompts(pipeline.PROMPTS), judge=judge)
            items = seeds.qa_items(leaf)
            if len(items) < 3:
                continue
            other = seeds.qa_items(leaves[(n + 1) % len(leaves)])
            held, shots_from = items[-1], items[:-1]
            shots = judge_examples(shots_from[:2], mismatched(shots_from)[:2])
            cases = {"good": held["answer"], **corrupt(held, shots_from, other)}

            context = Case(leaf, pipeline, runner, held, shots)
            rows += await asyncio.gather(
                *(judge_case(context, kind, answer, i) for i, (kind, answer) in enumerate(cases.items()))
            )
    finally:
        await teacher.aclose()
        if judge is not teacher:
            await judge.aclose()
    return summarize(rows, teacher, judge)


@dataclass
class Case:
    leaf: Any
    pipeline: Any
    runner: Any
    held: dict
    shots: list


async def judge_case(case: Case, kind: str, answer: str, index: int) -> dict:
    from labtax.generate.gate.checks import check_answer
    from labtax.generate.gate.scores import DEFAULT_THRESHOLD, accept_probability
    from labtax.generate.pipelines import parse
    from labtax.generate.pipelines.outcome import Reject

    leaf, pipeline, runner, held, shots = case.leaf, case.pipeline, case.runner, case.held, case.shots
    row = {
        "leaf": leaf.path,
        "kind": kind,
        "good": kind == "good",
        "score": 0,
        "probability": None,  # P(score >= pass) where the judge gave log-probabilities
        "accepted": False,
        "by": "judge",
    }
    failure = check_answer(held["question"], answer, "stop")
    if failure:
        row.update(by=f"check:{failure.reason}")
        return row
    from types import SimpleNamespace

    stage, fields = pipeline.final_judge(SimpleNamespace(leaf=leaf), held, answer)  # exactly what generation asks
    try:
        reply = await runner.call(stage, fields, 2_000_000 + index, shots)
        row["score"] = parse.score(reply.text, stage)
        row["probability"] = accept_probability(reply.top_logprobs, pipeline.MIN_SCORE)
    except Reject as reject:
        row["by"] = f"judge:{reject.reason}"
        return row
    if row["probability"] is None:
        row["accepted"] = row["score"] >= pipeline.MIN_SCORE
    else:
        row["accepted"] = row["probability"] >= DEFAULT_THRESHOLD
    return row


def summarize(rows: list[dict], teacher, judge=None) -> dict:
    kinds = sorted({r["kind"] for r in rows} - {"good"})
    good = [r for r in rows if r["good"]]
    bad = [r for r in rows if not r["good"]]
    per_kind = {
        k: {"n": sum(r["kind"] == k for r in rows), "rejected": sum(r["kind"] == k and not r["accepted"] for r in rows)}
        for k in kinds
    }
    good_acc = sum(r["accepted"] for r in good) / len(good) if good else 0.0
    bad_rej = sum(not r["accepted"] for r in bad) / len(bad) if bad else 0.0
    # Within a leaf, probabilities where both rows have one (a row stopped by the checks counts as 0), else scores.
    with_p = {r["leaf"] for r in rows if r["probability"] is not None}

    def rank(row: dict) -> float:
        if row["leaf"] in with_p:
            return row["probability"] if row["probability"] is not None else float(row["accepted"])
        return float(row["score"])

    pairs = [(rank(g), rank(b)) for g in good for b in bad if g["leaf"] == b["leaf"]]
    auc = sum(1.0 if g > b else 0.5 if g == b else 0.0 for g, b in pairs) / len(pairs) if pairs else 0.0
    return {
        "teacher": f"{teacher.name} {teacher.model}",
        "judge": f"{(judge or teacher).name} {(judge or teacher).model}",
        "leaves": len({r["leaf"] for r in rows}),
        "good_accepted": good_acc,
        "bad_rejected": bad_rej,
        "balanced_accuracy": (good_acc + bad_rej) / 2,
        "roc_auc_within_leaf": auc,
        "roc_auc_over": "probabilities" if with_p else "scores",
        "leaves_with_probabilities": len(with_p),
        "per_kind": per_kind,
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default=None)
    parser.add_argument("--model", default=None)
    parser.add_argument("--judge-model", default=None, help="a separate judge (default: the teacher judges)")
    parser.add_argument("--judge-base-url", default=None)
    parser.add_argument("--leaves", type=int, default=16)
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "labtax-bench-judge-cache"))
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    result = asyncio.run(measure(args))
    print(f"judge: {result['judge']}, {result['leaves']} leaves (held-out seed pair vs its corruptions)")
    print("| candidate | rejected by the gate |\n|---|---|")
    good = [r for r in result["rows"] if r["good"]]
    print(
        f"| the held-out seed pair (good) | {len(good) - sum(r['accepted'] for r in good)}/{len(good)} (accepted {result['good_accepted']:.0%}) |"
    )
    for kind, stats in result["per_kind"].items():
        print(f"| {kind.replace('_', ' ')} | {stats['rejected']}/{stats['n']} = {stats['rejected'] / stats['n']:.0%} |")
    print(
        f"\nbalanced accuracy {result['balanced_accuracy']:.2f}; ROC AUC of the judge's {'probability' if result['roc_auc_over'] == 'probabilities' else 'score'} within a leaf {result['roc_auc_within_leaf']:.2f}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
