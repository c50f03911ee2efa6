"""The gate on the teacher's own output: precision, good-acceptance and rejection per bad kind on the graded set.

Every labelled candidate (bench/graded/*candidates*.jsonl) goes through `labtax vet`, the gate as a user runs it
(the CLI, embedded judge, per-leaf calibration on), one taxonomy at a time; a candidate without an answer (the
teacher's reply could not be parsed into one) counts as rejected by generation's parser. Beside the whole gate,
the judge-free checks alone (gate/checks.py, no model) are measured as generation runs them, so what each part
adds is visible. Reported per split (`tune`, `heldout`) and per source, as JSON and as markdown tables:

    python bench/graded/measure.py --work /tmp/graded-vet   # resumable: vet's calls are cached under --work

precision = good among accepted; good-acceptance = good accepted / all good; per bad kind, the share rejected.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
from make_candidates import SOURCES, route_documents  # noqa: E402

KINDS = (
    "unsafe",
    "prompt_leak",
    "malformed",
    "truncated",
    "off_task",
    "copies_input",
    "non_answer",
    "wrong",
    "duplicate",
)


def key_of(leaf: str, question: str, answer: str) -> str:
    return hashlib.sha256(json.dumps([leaf, question.strip(), answer.strip()]).encode()).hexdigest()[:16]


def fields(row: dict) -> tuple[str, str, str, str]:
    """(question, answer, context, chunk id) of a graded row, as the teacher wrote them."""
    record = row["record"]
    if "messages" in record:
        provenance = record.get("provenance", {})
        user = [m["content"] for m in record["messages"] if m["role"] == "user"][-1]
        answer = [m["content"] for m in record["messages"] if m["role"] == "assistant"][-1]
        context = provenance.get("context") or ""
        if record.get("kind") == "knowledge":
            return user, answer, context, str(provenance.get("chunk") or "")
        question = user.removeprefix(f"{context}\n\n") if context else user
        return question, answer, context, ""
    candidate = record.get("candidate") or {}
    return (
        str(candidate.get("question") or ""),
        str(candidate.get("answer") or ""),
        str(candidate.get("context") or ""),
        str(candidate.get("chunk") or record.get("chunk") or ""),
    )


def vet_rows(rows: list[dict]) -> tuple[list[dict], dict[str, int]]:
    """The rows `labtax vet` takes (minimal rows: leaf, messages, context or chunk), and each one's graded index."""
    out, index = [], {}
    for n, row in enumerate(rows):
        question, answer, context, chunk = fields(row)
        if not question.strip() or not answer.strip():
            continue
        knowledge = row["leaf"].startswith("knowledge/")
        item = {
            "leaf": row["leaf"],
            "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
        }
        if knowledge:
            item["chunk"] = context or chunk
            if not item["chunk"]:
                continue
        elif context:
            item["context"] = context
        out.append(item)
        index[key_of(row["leaf"], question, answer)] = n
    return out, index


def run_vet(source: str, rows: list[dict], work: Path, judge: tuple[str, ...] = ()) -> dict[int, tuple[str, str]]:
    """Each vetted row's verdict: graded index -> ("accepted", "vetted" | "unvetted") or ("rejected", reason)."""
    items, index = vet_rows(rows)
    folder = work / f"vet-{source}"
    folder.mkdir(parents=True, exist_ok=True)
    inputs = folder / "input.jsonl"
    inputs.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_BASE_URL", "OPENAI_API_KEY")}
    labtax = str(Path(sys.executable).parent / "labtax")
    cmd = [labtax, "vet", str(inputs), "--root", str(SOURCES[source]), "--output", str(folder / "out"), *judge]
    done = subprocess.run(cmd, env=env, text=True, capture_output=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"labtax vet failed ({done.returncode}):\n{done.stderr[-3000:]}")
    verdicts: dict[int, tuple[str, str]] = {}
    for name, outcome in (("accepted.jsonl", "accepted"), ("rejected.jsonl", "rejected")):
        for line in (folder / "out" / name).read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if outcome == "accepted":
                chat = record["messages"]
                user = [m["content"] for m in chat if m["role"] == "user"][-1]
                answer = [m["content"] for m in chat if m["role"] == "assistant"][-1]
                chunk = record.get("provenance", {}).get("context") or ""
                question = user.removeprefix(f"{chunk}\n\n") if chunk else user
                vetted = record.get("judge", {}).get("vetted") == "yes"  # calibration separated the leaf
                key, reason = key_of(record["leaf"], question, answer), "vetted" if vetted else "unvetted"
            else:
                candidate = record["candidate"]
                key = key_of(record["leaf"], candidate.get("question", ""), candidate.get("answer", ""))
                reason = f"{record['stage']}:{record['reason']}"
            if key in index:
                verdicts[index[key]] = (outcome, reason)
    return verdicts


def checks_alone(row: dict, cache: dict) -> tuple[str, str]:
    """The judge-free checks on a row, as generation runs them for its leaf (no model); a row generation's own
    judge-free checks (parser, dedup, consistency) rejected stays rejected for that reason."""
    from labtax.generate.gate.checks import check_answer, check_question
    from labtax.generate.pipelines import leaf_checks, pipeline_for, prompts
    from labtax.taxonomy.loader import load_leaf

    if row["outcome"] == "rejected":
        return "rejected", f"generation:{row['record'].get('reason')}"
    key = (row["source"], row["leaf"])
    if key not in cache:
        leaf = load_leaf(SOURCES[row["source"]], row["leaf"])
        cache[key] = leaf_checks(leaf, prompts.load(pipeline_for(leaf).PROMPTS))
    question, answer, context, _ = fields(row)
    context = "" if row["leaf"].startswith("knowledge/") else context
    failure = check_question(question, cache[key], context)
    if failure is None and answer:
        failure = check_answer(question, answer, "stop", context=context, leaf=cache[key])
    return ("rejected", f"checks:{failure.reason}") if failure else ("accepted", "")


def metrics(rows: list[dict], verdicts: dict[int, tuple[str, str]]) -> dict:
    accepted = [n for n in verdicts if verdicts[n][0] == "accepted"]
    good = [n for n, r in enumerate(rows) if r["label"] == "good" and n in verdicts]
    kinds = defaultdict(lambda: [0, 0])
    for n, (outcome, _) in verdicts.items():
        if rows[n]["label"] == "bad":
            kinds[rows[n]["bad_kind"]][1] += 1
            kinds[rows[n]["bad_kind"]][0] += outcome == "rejected"
    good_accepted = sum(1 for n in accepted if rows[n]["label"] == "good")
    return {
        "rows": len(verdicts),
        "good": len(good),
        "accepted": len(accepted),
        "good_accepted": good_accepted,
        "precision": round(good_accepted / len(accepted), 3) if accepted else None,
        "good_acceptance": round(good_accepted / len(good), 3) if good else None,
        "rejected_by_kind": {k: f"{kinds[k][0]}/{kinds[k][1]}" for k in KINDS if kinds[k][1]},
        "reasons": dict(Counter(verdicts[n][1] for n in verdicts if verdicts[n][0] == "rejected").most_common()),
    }


def table(results: dict) -> str:
    head = "| gate | split | rows | good | accepted | precision | good-acceptance | " + " | ".join(KINDS) + " |\n"
    head += "|---" * (7 + len(KINDS)) + "|\n"
    lines = []
    for gate, by_split in results.items():
        for split, m in by_split.items():
            kinds = " | ".join(m["rejected_by_kind"].get(k, "") for k in KINDS)
            p = "n/a (none accepted)" if m["precision"] is None else f"{m['precision']:.2f}"
            g = "n/a (no good row)" if m["good_acceptance"] is None else f"{m['good_acceptance']:.2f}"
            lines.append(f"| {gate} | {split} | {m['rows']} | {m['good']} | {m['accepted']} | {p} | {g} | {kinds} |\n")
    return head + "".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="vet's inputs, outputs and call cache (resumable)")
    parser.add_argument("--files", nargs="*", type=Path, default=sorted(HERE.glob("*candidates*.jsonl")))
    parser.add_argument("--no-vet", action="store_true", help="the judge-free checks only (seconds, no model)")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    parser.add_argument("--split", choices=("tune", "heldout"), help="only this split's rows (default: both)")
    parser.add_argument("--source", choices=sorted(SOURCES), help="only this taxonomy's rows (default: all)")
    parser.add_argument("--judge-base-url", help="vet with this OpenAI-compatible endpoint as the judge")
    parser.add_argument("--judge-model", default="smollm2", help="the endpoint judge's model name")
    parser.add_argument("--judge-tokenizer", help="its tokenizer folder, so the likelihood checks run (vet's option)")
    args = parser.parse_args()
    judge: tuple[str, ...] = ()
    if args.judge_base_url:
        judge = ("--judge-base-url", args.judge_base_url, "--judge-model", args.judge_model)
        judge += ("--judge-tokenizer", args.judge_tokenizer) if args.judge_tokenizer else ()
    rows = [json.loads(line) for path in args.files for line in path.read_text(encoding="utf-8").splitlines()]
    rows = [
        r
        for r in rows
        if r.get("label") in ("good", "bad")
        and (args.split is None or r["split"] == args.split)
        and (args.source is None or r["source"] == args.source)
    ]
    args.work.mkdir(parents=True, exist_ok=True)
    route_documents(args.work)
    cache: dict = {}
    gates = {
        "judge-free checks (generation's and gate/checks.py)": {n: checks_alone(r, cache) for n, r in enumerate(rows)}
    }
    if not args.no_vet:
        vetted: dict[int, tuple[str, str]] = {}
        for source in sorted({r["source"] for r in rows}):
            picked = [n for n, r in enumerate(rows) if r["source"] == source]
            got = run_vet(source, [rows[n] for n in picked], args.work, judge)
            vetted.update({picked[i]: v for i, v in got.items()})
        for n, row in enumerate(rows):  # no answer to vet: generation's parser rejected it
            vetted.setdefault(n, ("rejected", f"generation:{row['record'].get('reason', 'no answer')}"))
        gates["labtax vet: accepted"] = vetted
        # precision first (generate's default): an accepted row its leaf's calibration did not vet is held back
        gates["labtax vet: accepted and vetted (what reaches the training files)"] = {
            n: ("rejected", "unvetted") if v == ("accepted", "unvetted") else v for n, v in vetted.items()
        }
    results = {}
    for gate, verdicts in gates.items():
        results[gate] = {}
        for split in ("tune", "heldout", "all"):
            picked = {n: v for n, v in verdicts.items() if split == "all" or rows[n]["split"] == split}
            results[gate][split] = metrics(rows, picked)
    verdicts_by_row = [
        {
            "row": n,
            "source": row["source"],
            "leaf": row["leaf"],
            "split": row["split"],
            "label": row["label"],
            "bad_kind": row["bad_kind"],
            **{gate: list(verdicts[n]) for gate, verdicts in gates.items() if n in verdicts},
        }
        for n, row in enumerate(rows)
    ]
    args.out.write_text(json.dumps({"metrics": results, "rows": verdicts_by_row}, indent=1) + "\n", encoding="utf-8")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
