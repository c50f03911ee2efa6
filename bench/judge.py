"""bench/judge.py: does the quality gate separate good data from bad? Measured, per corruption type.

A labelled set from real seeds (this repository's skill and knowledge leaves, and InstructLab's skill leaves
in ../shared/corpus): each held-out seed is a good candidate; systematic corruptions of it are bad ones.
Every candidate goes through the gate exactly as generation runs it: the one decision function
(generate/gate/decision.py `decide`, which generation and `labtax vet` call), with every check measured so
that each part can also be reported alone; on the embedded teacher or any endpoint (`--base-url`). Three
parts, each printed per corruption type (how often it is rejected), with good acceptance, balanced accuracy
and ROC AUC within a leaf (generate/gate/scores.py `roc_auc_pairs`, as calibration computes it):

1. Pair gate (skill leaves): the cheap checks, the relevance check (the judge model's likelihood of the answer
   after its own question vs after other seed questions, gate/relevance.py) and the leaf's pair judge with
   the leaf's own few-shot examples; each measured alone and as generation chains them (checks, then
   relevance, then self-consistency, then the judge: the gate's answer part, a row rejected by any is
   rejected), at the default thresholds and at those the leaf's calibration chose.
2. Question gate (skill leaves): the held-out seed question vs an off-topic task, another leaf's task, an
   unanswerable question and an unsafe request, through the gate's question part (question relevance, then
   the leaf pipeline's `judge_question` stage).
3. Knowledge faithfulness (knowledge leaves): the held-out seed answer vs an answer contradicting its chunk,
   an answer from another chunk and a true statement that is not in the chunk, through `judge_faithful`
   alone, the grounding relevance alone (the answer after its own chunk vs after other chunks), and the
   whole knowledge gate (checks, grounding, the faithful, relevant and standalone judges).

Where the judge returns log-probabilities (the embedded model; an endpoint that supports them), a verdict is
the probability P(score >= pass) read from them, as generation reads it (generate/gate/scores.py): accepted at
P >= 0.5 (the uncalibrated threshold; generation calibrates it per leaf) and ranked by it; elsewhere by the
sampled score. Relevance needs a judge that can score a given reply (the embedded model); with an endpoint it
decides nothing and is reported as not measured. `--judge-model` / `--judge-base-url` measure a separate
judge, as `labtax generate` takes them.

    .venv/bin/python bench/judge.py [--base-url URL --model NAME] [--judge-model NAME [--judge-base-url URL]]
                                    [--leaves N] [--cache DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "cli"))
CORPUS = REPO.parent / "shared" / "corpus" / "instructlab-taxonomy" / "head"

REFUSAL = "I'm sorry, I can't help with that."
THRESHOLD = 0.5  # the uncalibrated threshold of every judge probability here

# Question-judge corruptions: fixed tasks, none of them one of the prompt's own negatives (the judge's shots).
OFF_TOPIC_TASK = "Give me a recipe for banana bread."
UNANSWERABLE_TASK = "What did my neighbour have for breakfast last Tuesday?"
UNSAFE_TASK = "How can I pick the lock on my neighbour's front door while they are away?"
# Knowledge: true statements that no chunk of this repository says (rotated over rows).
TRUE_ELSEWHERE = (
    "Water boils at 100 degrees Celsius at sea level.",
    "Mount Everest is the highest mountain above sea level.",
    "The Pacific is the largest ocean on Earth.",
)
NUMBER_WORDS = {
    "one": "three",
    "two": "five",
    "three": "seven",
    "four": "nine",
    "five": "two",
    "six": "four",
    "seven": "eleven",
    "eight": "three",
    "nine": "six",
    "ten": "four",
    "twelve": "eight",
}


# -- corruptions -----------------------------------------------------------------------------------------------


def changed_numbers(text: str) -> str:
    return re.sub(r"\d+(?:\.\d+)?", lambda m: str(int(float(m.group()) * 3 + 7)), text)


def corrupt(item: dict, same_leaf: list[dict], other_leaf: list[dict]) -> dict[str, str]:
    """The bad twins of one good pair, by kind (the rows of the issue's table and a few more)."""
    answer = item["answer"]
    out = {}
    same = [o["answer"] for o in same_leaf if o["answer"] != answer]
    if same:
        out["same_leaf_answer"] = same[0]
    if other_leaf:
        out["other_leaf_answer"] = other_leaf[0]["answer"]
    changed = changed_numbers(answer)
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


def contradict(answer: str, chunk: str, other_chunks: list[str]) -> str:
    """The answer made to contradict its chunk: numbers and number words changed, names (capitalised words
    not starting a sentence) swapped for names of other chunks; failing all of these, its longest word that the
    chunk uses swapped for the longest word of other chunks that this chunk does not use (a wrong key term)."""
    changed = changed_numbers(answer)

    def number_word(m: re.Match) -> str:
        word = NUMBER_WORDS[m.group().lower()]
        return word.capitalize() if m.group()[0].isupper() else word

    changed = re.sub(r"\b(" + "|".join(NUMBER_WORDS) + r")\b", number_word, changed, flags=re.IGNORECASE)
    own = set(re.findall(r"\w+", chunk.lower()))
    mid_sentence = r"(?<=[a-z,;] )[A-Z][A-Za-z0-9]+"  # a capitalised word not starting a sentence: a name
    names = {w for c in other_chunks for w in re.findall(mid_sentence, c) if w.lower() not in own}
    swaps = iter(sorted(names, key=lambda w: (-len(w), w)))
    changed = re.sub(mid_sentence, lambda m: next(swaps, m.group()), changed)
    if changed != answer:
        return changed
    terms = {w for w in re.findall(r"[A-Za-z]+", answer) if len(w) >= 6 and w.lower() in own}
    used = sorted(terms, key=lambda w: (len(w), w))  # fully ordered: the same corruption on every run
    words = {w.lower() for c in other_chunks for w in re.findall(r"[A-Za-z]+", c) if len(w) >= 6}
    spare = sorted(words - own, key=lambda w: (-len(w), w))
    if not used or not spare:
        return answer
    term = used[-1]
    swap = ([w for w in spare if w.endswith("s") == term.endswith("s")] or spare)[0]
    swap = swap.capitalize() if term[0].isupper() else swap
    return re.sub(rf"\b{re.escape(term)}\b", swap, answer)


# -- leaves ----------------------------------------------------------------------------------------------------


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


def knowledge_leaves() -> list:
    from labtax.taxonomy.loader import LoadProblem, load_leaf

    leaves = []
    for path in sorted(REPO.glob("knowledge/**/qna.yaml")):
        try:
            leaves.append(load_leaf(REPO, path.relative_to(REPO).as_posix()))
        except LoadProblem:
            continue
    return leaves


# -- measuring -------------------------------------------------------------------------------------------------


@dataclass
class Case:
    job: Any  # the leaf's LeafJob, its prompt items all seeds but the held-out one
    held: dict


def leaf_job(leaf, pipeline, runner, prompt_items: list[dict], items: list[dict]):
    """The job generation would run for `leaf` with `prompt_items` as its seeds (the leaf's format from all of
    `items`), so that the gate's decision (gate/decision.py) sees exactly what generation's does."""
    from labtax.generate.pipelines import LeafJob
    from labtax.generate.seeds import LeafShape

    return LeafJob(leaf, pipeline, runner, prompt_items, prompt_items, shape=LeafShape.of(items))


def fields_of(verdict, judge: str, relevance: str) -> dict:
    """A row's fields from the gate's verdict (every check measured, exhaustive): each part's outcome, so that
    each can be reported alone, and the gate's own decision (`gate_accepted`)."""
    checks, rel, judged = verdict.check("checks"), verdict.check(relevance), verdict.check(judge)
    consistency = verdict.check("consistency")
    cut = rel is not None and rel.reject is not None and rel.reject.reason == "unfinished"
    return {
        "check": checks.reject.reason if checks is not None and checks.reject is not None else None,
        "relevance": rel.probability if rel is not None else None,  # None: not measured (the judge cannot score)
        "relevance_accepted": rel is None or rel.passed,
        "unfinished": rel.reject.detail if cut and rel is not None and rel.reject is not None else None,
        "inconsistent": consistency.reject.detail if consistency and consistency.reject else None,
        "score": judged.score if judged is not None and judged.score is not None else 0,
        "probability": judged.probability if judged is not None else None,
        "judge_accepted": judged is not None and judged.passed,
        "judge_error": judged.reject.reason if judged and judged.score is None and judged.reject else None,
        "gate_accepted": verdict.accepted,
    }


async def pair_row(case: Case, kind: str, answer: str, index: int) -> dict:
    """One pair-gate row: the gate's answer part (gate/decision.py `decide`, as generation runs it), every
    check measured so that each can be reported alone; at the default thresholds, and again (replayed from the
    cache) at those the leaf's calibration chose."""
    from labtax.generate.gate.decision import decide

    job, held = case.job, case.held
    candidate = {"question": held["question"], "answer": answer, "context": held.get("context", "")}
    verdict = await decide(job, candidate, index, parts=("answer",), thresholds={}, exhaustive=True)
    calibrated = await decide(job, candidate, index, parts=("answer",))
    return {
        "leaf": job.leaf.path,
        "kind": kind,
        "good": kind == "good",
        **fields_of(verdict, "pair", "relevance"),
        "calibrated_accepted": calibrated.accepted,
        "answer": answer,
    }


async def question_row(case: Case, kind: str, question: str, index: int) -> dict:
    """The gate's question part: question relevance, then the question judge."""
    from labtax.generate.gate.decision import decide

    job = case.job
    candidate = {"question": question, "context": case.held.get("context", "")}
    verdict = await decide(job, candidate, index, parts=("question",), thresholds={}, exhaustive=True)
    row = {"leaf": job.leaf.path, "kind": kind, "good": kind == "good"}
    return {**row, **fields_of(verdict, "question", "question_relevance"), "question": question}


async def knowledge_row(job, held: dict, kind: str, answer: str, index: int) -> dict:
    """The knowledge gate (checks, grounding, the three judges); `judge_faithful` reported alone too."""
    from labtax.generate.gate.decision import decide

    candidate = {"question": held["question"], "answer": answer, "context": held["context"], "chunk": ""}
    verdict = await decide(job, candidate, index, thresholds={}, exhaustive=True)
    row = {"leaf": job.leaf.path, "kind": kind, "good": kind == "good"}
    return {**row, **fields_of(verdict, "faithful", "relevance"), "answer": answer}


async def measure(args) -> dict:
    from labtax.config import load_config
    from labtax.generate import seeds
    from labtax.generate.cache import CallCache
    from labtax.generate.calibrate import calibrate
    from labtax.generate.pipelines import knowledge, pipeline_for
    from labtax.generate.pipelines.prompts import load as load_prompts
    from labtax.generate.pipelines.runner import StageRunner
    from labtax.teacher.resolve import describe_teacher, make_judge, make_teacher

    started = time.monotonic()
    config = load_config(REPO)
    teacher = make_teacher(config, base_url=args.base_url, model=args.model, concurrency=8)
    info = describe_teacher(config, base_url=args.base_url, model=args.model)
    judge = make_judge(config, info, base_url=args.judge_base_url, model=args.judge_model, concurrency=8) or teacher
    cache = CallCache(Path(args.cache))
    pair_rows: list[dict] = []
    question_rows: list[dict] = []
    knowledge_rows: list[dict] = []
    leaves = skill_leaves(args.leaves)
    try:
        for n, leaf in enumerate(leaves):
            pipeline = pipeline_for(leaf)
            runner = StageRunner(teacher, cache, load_prompts(pipeline.PROMPTS), judge=judge)
            items = seeds.qa_items(leaf)
            if len(items) < 3:
                continue
            other = seeds.qa_items(leaves[(n + 1) % len(leaves)])
            held, prompt_items = items[-1], items[:-1]
            job = leaf_job(leaf, pipeline, runner, prompt_items, items)
            case = Case(job, held)
            answers = {"good": held["answer"], **corrupt(held, prompt_items, other)}
            questions = {
                "good": held["question"],
                "off_topic_task": OFF_TOPIC_TASK,
                "other_leaf_task": other[0]["question"] if other else None,
                "unanswerable": UNANSWERABLE_TASK,
                "unsafe": UNSAFE_TASK,
            }
            # The leaf's calibration as generation runs it (generate/calibrate.py), on its other seeds only: the
            # thresholds it chooses (in the runner) decide the held-out rows in the "calibrated" column.
            report = await calibrate(job, pipeline.MIN_SCORE)
            thresholds = {"judge": report.threshold, "relevance": report.relevance_threshold}
            rows = await asyncio.gather(
                *(pair_row(case, kind, answer, 2_000_000 + i) for i, (kind, answer) in enumerate(answers.items()))
            )
            pair_rows += [{**row, "calibrated": thresholds} for row in rows]
            question_rows += await asyncio.gather(
                *(question_row(case, kind, q, 3_000_000 + n) for kind, q in questions.items() if q)
            )
        for n, leaf in enumerate(knowledge_leaves()):
            runner = StageRunner(teacher, cache, load_prompts(knowledge.PROMPTS), judge=judge)
            items = seeds.qa_items(leaf)
            # Held out: the last question of each chunk, one at a time; the leaf's other seeds are its prompt items.
            last = {item["context"]: k for k, item in enumerate(items)}
            for k in sorted(last.values()):
                held = items[k]
                prompt_items = items[:k] + items[k + 1 :]
                job = leaf_job(leaf, knowledge, runner, prompt_items, items)
                elsewhere = [i for i in prompt_items if i["context"] != held["context"]]
                other_chunks = list(dict.fromkeys(i["context"] for i in elsewhere))
                another = elsewhere[(3 * k) % len(elsewhere)]["answer"]
                answers = {
                    "good": held["answer"],
                    "contradiction": contradict(held["answer"], held["context"], other_chunks),
                    "another_chunk_answer": another,
                    "true_not_in_chunk": TRUE_ELSEWHERE[(n + k) % len(TRUE_ELSEWHERE)],
                }
                knowledge_rows += await asyncio.gather(
                    *(knowledge_row(job, held, kind, a, 4_000_000 + k) for kind, a in answers.items())
                )
    finally:
        await teacher.aclose()
        if judge is not teacher:
            await judge.aclose()
    return {
        "teacher": f"{teacher.name} {teacher.model}",
        "judge": f"{judge.name} {judge.model}",
        "seconds": round(time.monotonic() - started, 1),
        "pair": summarize_pair(pair_rows),
        "question": summarize_part(
            question_rows, {"judge": judge_verdict, "relevance": relevance_verdict, "both": gate_verdict}
        ),
        "knowledge": summarize_part(
            knowledge_rows,
            {
                "checks_and_judge": checks_then(judge_verdict),
                "grounding_relevance": relevance_verdict,
                "both": gate_verdict,  # the gate: checks, grounding relevance, then the three judges
            },
        ),
    }


# -- summaries -------------------------------------------------------------------------------------------------
# A verdict function maps a row to (accepted, rank value or None); rank values are compared within a leaf.


def judge_value(row: dict) -> float:
    """The judge's verdict as a number: its probability, else the sampled score over 3 (0: an unusable reply)."""
    return row["probability"] if row["probability"] is not None else row["score"] / 3


def judge_verdict(row: dict) -> tuple[bool, float | None]:
    return row["judge_accepted"], judge_value(row)


def relevance_verdict(row: dict) -> tuple[bool, float | None]:
    """The likelihood check alone at its default threshold (its `unfinished` check included); a row it could
    not measure is not rejected by it (as in generation)."""
    if row.get("unfinished"):
        return False, 0.0  # the likelihoods' own cheap check: the model would not end the answer there
    return row["relevance_accepted"], row["relevance"]


def rank_value(row: dict) -> float:
    """A whole gate's rank within a leaf: 0 where a check without a probability stopped it (the cheap checks,
    an unfinished answer, self-consistency), else min(relevance, judge)."""
    if row["check"] or row.get("inconsistent") or row.get("unfinished"):
        return 0.0
    value = judge_value(row)
    return value if row["relevance"] is None else min(row["relevance"], value)


def gate_verdict(row: dict) -> tuple[bool, float | None]:
    """The gate's own decision (gate/decision.py `decide`) at the default thresholds."""
    return row["gate_accepted"], rank_value(row)


def calibrated_verdict(row: dict) -> tuple[bool, float | None]:
    """The gate's own decision at the thresholds the leaf's calibration chose on its other seeds."""
    return row["calibrated_accepted"], rank_value(row)


def consistency_verdict(row: dict) -> tuple[bool, float | None]:
    return not row.get("inconsistent"), None


def checks_then(verdict: Callable[[dict], tuple[bool, float | None]]) -> Callable[[dict], tuple[bool, float | None]]:
    """The cheap checks first: a row they stop is rejected, with rank value 0."""

    def gated(row: dict) -> tuple[bool, float | None]:
        return (False, 0.0) if row["check"] else verdict(row)

    return gated


def summarize_pair(rows: list[dict]) -> dict:
    return summarize_part(
        rows,
        {
            "judge": judge_verdict,
            "relevance": relevance_verdict,
            "consistency": consistency_verdict,
            "checks_and_judge": checks_then(judge_verdict),  # the gate before relevance (earlier tables)
            "gate": gate_verdict,  # checks, relevance, self-consistency, then the judge
            "calibrated": calibrated_verdict,  # the same at the thresholds the leaf's calibration chose
        },
    )


def summarize_part(rows: list[dict], verdicts: dict[str, Callable[[dict], tuple[bool, float | None]]]) -> dict:
    from labtax.generate.gate.scores import roc_auc_pairs

    kinds = sorted({r["kind"] for r in rows} - {"good"})
    good = [r for r in rows if r["good"]]
    bad = [r for r in rows if not r["good"]]
    out: dict[str, Any] = {
        "leaves": len({r["leaf"] for r in rows}),
        "n_good": len(good),
        "n_bad": len(bad),
        "kinds": kinds,
        "rows": rows,
    }
    for name, verdict in verdicts.items():
        measured = [r for r in rows if verdict(r)[1] is not None]
        good_acc = sum(verdict(r)[0] for r in good) / len(good) if good else 0.0
        bad_rej = sum(not verdict(r)[0] for r in bad) / len(bad) if bad else 0.0

        def auc(bad_rows: list[dict], verdict=verdict) -> float | None:
            """ROC AUC over (good, bad) pairs of the same leaf where both have a rank value."""
            pairs = [
                (verdict(g)[1], verdict(b)[1])
                for g in good
                for b in bad_rows
                if g["leaf"] == b["leaf"] and verdict(g)[1] is not None and verdict(b)[1] is not None
            ]
            return roc_auc_pairs(pairs)

        out[name] = {
            "good_accepted": good_acc,
            "bad_rejected": bad_rej,
            "balanced_accuracy": (good_acc + bad_rej) / 2,
            "roc_auc_within_leaf": auc(bad),
            "measured_rows": len(measured),
            "good_accepted_n": sum(verdict(r)[0] for r in good),
            "per_kind": {
                k: {
                    "n": sum(r["kind"] == k for r in rows),
                    "rejected": sum(r["kind"] == k and not verdict(r)[0] for r in rows),
                    "roc_auc_within_leaf": auc([r for r in bad if r["kind"] == k]),
                }
                for k in kinds
            },
        }
    return out


def summarize(rows: list[dict], teacher, judge=None) -> dict:
    """The earlier summary of the pair gate without relevance (checks, then the judge; rows' `accepted`): good
    acceptance, balanced accuracy and ROC AUC within a leaf over the judge's probabilities where a leaf has
    them (a row stopped by the checks counts as 0), else over the sampled scores."""
    from labtax.generate.gate.scores import roc_auc_pairs

    kinds = sorted({r["kind"] for r in rows} - {"good"})
    good = [r for r in rows if r["good"]]
    bad = [r for r in rows if not r["good"]]
    per_kind = {
        k: {"n": sum(r["kind"] == k for r in rows), "rejected": sum(r["kind"] == k and not r["accepted"] for r in rows)}
        for k in kinds
    }
    good_acc = sum(r["accepted"] for r in good) / len(good) if good else 0.0
    bad_rej = sum(not r["accepted"] for r in bad) / len(bad) if bad else 0.0
    with_p = {r["leaf"] for r in rows if r["probability"] is not None}

    def rank(row: dict) -> float:
        if row.get("check"):  # stopped by the checks before the judge (its verdict, if measured, is not used)
            return 0.0
        if row["leaf"] in with_p:
            return row["probability"] if row["probability"] is not None else float(row["accepted"])
        return float(row["score"])

    pairs = [(rank(g), rank(b)) for g in good for b in bad if g["leaf"] == b["leaf"]]
    auc = roc_auc_pairs(pairs) or 0.0
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


# -- printing --------------------------------------------------------------------------------------------------


def table(title: str, part: dict, columns: dict[str, str], kind_auc: bool = False) -> str:
    """A markdown table: one row per candidate kind, one column per verdict (with `kind_auc`, each cell also
    gives the ROC AUC of good against that kind alone); then the summary lines."""
    names = list(columns)
    lines = [title, "", "| candidate | " + " | ".join(columns.values()) + " |", "|---" * (len(names) + 1) + "|"]
    lines.append(
        "| good (accepted) | "
        + " | ".join(f"{part[c]['good_accepted_n']}/{part['n_good']} = {part[c]['good_accepted']:.0%}" for c in names)
        + " |"
    )
    for kind in part["kinds"]:
        cells = []
        for c in names:
            stats = part[c]["per_kind"][kind]
            cell = f"{stats['rejected']}/{stats['n']} = {stats['rejected'] / stats['n']:.0%}"
            value = stats["roc_auc_within_leaf"]
            cells.append(cell + (f", AUC {value:.2f}" if kind_auc and value is not None else ""))
        lines.append(f"| {kind.replace('_', ' ')} (rejected) | " + " | ".join(cells) + " |")
    lines.append("| balanced accuracy | " + " | ".join(f"{part[c]['balanced_accuracy']:.2f}" for c in names) + " |")

    def overall(c: str) -> str:
        value = part[c]["roc_auc_within_leaf"]
        return "not measured" if value is None else f"{value:.2f}"

    lines.append("| ROC AUC within a leaf | " + " | ".join(overall(c) for c in names) + " |")
    return "\n".join(lines)


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
    pair, question, know = result["pair"], result["question"], result["knowledge"]
    with_p = sum(r["probability"] is not None for part in (pair, question, know) for r in part["rows"])
    total = sum(len(part["rows"]) for part in (pair, question, know))
    print(
        f"judge: {result['judge']}; {pair['leaves']} skill leaves, {know['leaves']} knowledge leaves; "
        f"{with_p}/{total} verdicts with probabilities; judge accepts at {THRESHOLD}, relevance at 0.9; {result['seconds']:.0f} s\n"
    )
    print(
        table(
            "Pair gate (skill leaves: held-out seed pair vs its corruptions)",
            pair,
            {
                "judge": "judge alone",
                "relevance": "likelihoods alone (finished, relevant)",
                "consistency": "self-consistency alone",
                "checks_and_judge": "checks + judge",
                "gate": "gate: checks, likelihoods, self-consistency, judge",
                "calibrated": "the same, thresholds calibrated per leaf",
            },
        )
    )
    print()
    title = "Question gate (held-out seed question vs bad tasks)"
    columns = {"judge": "judge_question", "relevance": "question relevance alone", "both": "relevance, then judge"}
    print(table(title, question, columns, kind_auc=True))
    print()
    print(
        table(
            "Knowledge faithfulness (held-out seed answer vs bad answers)",
            know,
            {
                "checks_and_judge": "checks + judge_faithful",
                "grounding_relevance": "grounding relevance alone",
                "both": "gate: checks, relevance, three judges",
            },
            kind_auc=True,
        )
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
