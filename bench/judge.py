"""bench/judge.py: does the quality gate separate good data from bad? Measured, per corruption type.

A labelled set from real seeds (this repository's skill and knowledge leaves, and InstructLab's skill leaves
in ../shared/corpus): each held-out seed is a good candidate; systematic corruptions of it are bad ones.
Every candidate goes through the gate exactly as generation runs it, on the embedded teacher or any endpoint
(`--base-url`). Three parts, each printed per corruption type (how often it is rejected), with good
acceptance, balanced accuracy and ROC AUC within a leaf:

1. Pair gate (skill leaves): the cheap checks, the relevance check (the judge model's likelihood of the answer
   after its own question vs after other seed questions, gate/relevance.py) and the leaf's pair judge with
   the leaf's own few-shot examples; each measured alone and as generation chains them (checks, then
   relevance, then the judge: a row rejected by any is rejected).
2. Question judge (skill leaves): the held-out seed question vs an off-topic task, another leaf's task, an
   unanswerable question and an unsafe request, through the leaf pipeline's `judge_question` stage.
3. Knowledge faithfulness (knowledge leaves): the held-out seed answer vs an answer contradicting its chunk,
   an answer from another chunk and a true statement that is not in the chunk, through `judge_faithful`;
   beside it a grounding relevance (the answer after its own chunk vs after other chunks), a candidate
   design that generation does not run yet.

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
from types import SimpleNamespace
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
    leaf: Any
    pipeline: Any
    runner: Any
    held: dict
    seeds: list  # the leaf's seed items used as prompt items (all but the held-out one)
    shots: list


def verdict_of(reply, stage: str, min_score: int) -> tuple[int, float | None, bool]:
    """(sampled score, P(score >= min_score) or None, accepted at THRESHOLD or by the digit)."""
    from labtax.generate import parse
    from labtax.generate.gate.scores import accept_probability

    score = parse.score(reply.text, stage)
    probability = accept_probability(reply.top_logprobs, min_score)
    return score, probability, (score >= min_score if probability is None else probability >= THRESHOLD)


async def judged(runner, stage: str, fields: dict, index: int, shots: list, min_score: int) -> dict:
    """One judge verdict as a row's fields: score, probability, judge_accepted, judge_error."""
    from labtax.generate.outcome import Reject

    try:
        reply = await runner.call(stage, fields, index, shots)
        score, probability, accepted = verdict_of(reply, stage, min_score)
    except Reject as reject:  # an unusable reply: rejected, as generation rejects it
        return {"score": 0, "probability": None, "judge_accepted": False, "judge_error": reject.reason}
    return {"score": score, "probability": probability, "judge_accepted": accepted, "judge_error": None}


async def relevance_of(runner, own: str, others: list[str], answer: str) -> tuple[float | None, float | None]:
    """P(the answer belongs to `own` rather than to `others`) exactly as generation computes it
    (pipelines/common.relevant, before its threshold), and log P(end of turn after the answer) that its
    `unfinished` check reads; (None, None) where the judge cannot score."""
    from labtax.generate.gate.relevance import probability
    from labtax.generate.outcome import Reject

    if not others:
        return None, None
    try:
        values = await runner.loglikelihood([[{"role": "user", "content": t}] for t in (own, *others)], answer)
    except Reject:
        return None, None
    if values is None or values[0] is None:
        return None, None
    return probability(values[0].total, [v.total for v in values[1:] if v is not None]), values[0].end


async def consistency_of(case: Case, answer: str, index: int) -> str | None:
    """Self-consistency exactly as generation runs it (gate/consistency.py): where the answer ends in a number,
    the teacher answers the held-out question again (the answer stage, the pipeline's fields and examples) and
    the candidate is rejected when that answer ends elsewhere. The detail where it rejects, else None."""
    from labtax.generate.gate.consistency import check_consistency
    from labtax.generate.outcome import Reject
    from labtax.generate.pipelines.common import rotate

    task = str(case.leaf.data.get("task_description", "")).strip()
    fields = {"task_description": task, "question": case.held["question"]}
    if case.pipeline.PROMPTS == "skill_grounded":
        fields = {"task_description": task, "new_context": case.held.get("context", ""), **fields}
        seeds = [s for s in case.seeds if s.get("context")] or case.seeds
        examples = rotate(seeds, index, 2)
    else:
        examples = rotate(case.seeds, index + 1, 2)
    try:
        await check_consistency(case.runner, "answer", fields, index, examples, answer, {})
    except Reject as reject:
        return reject.detail
    return None


async def pair_row(case: Case, kind: str, answer: str, index: int) -> dict:
    """One pair-gate row: every part measured on every row (so each can be reported alone), then combined as
    generation chains them."""
    from labtax.generate.gate.checks import check_answer

    leaf, pipeline, runner, held = case.leaf, case.pipeline, case.runner, case.held
    failure = check_answer(held["question"], answer, "stop")
    item = {"question": held["question"], "answer": answer, "context": held.get("context", "")}
    own, others = pipeline.relevance_turns(SimpleNamespace(prompt_items=case.seeds), item, index)
    stage, fields = pipeline.final_judge(SimpleNamespace(leaf=leaf), held, answer)  # exactly what generation asks
    verdict, relevance, inconsistent = await asyncio.gather(
        judged(runner, stage, fields, index, case.shots, pipeline.MIN_SCORE),
        relevance_of(runner, own, others, answer),
        consistency_of(case, answer, index),
    )
    return {
        "leaf": leaf.path,
        "kind": kind,
        "good": kind == "good",
        "check": failure.reason if failure else None,
        "inconsistent": inconsistent,  # the self-consistency check's detail where it rejected, else None
        "relevance": relevance[0],  # None: not measured (the judge cannot score)
        "end": relevance[1],  # log P(end of turn after the answer): the `unfinished` check
        "compared_with": len(others),
        "answer": answer,
        **verdict,
        "accepted": failure is None and verdict["judge_accepted"],  # checks, then the judge: the earlier gate
    }


def question_shots(pipeline, runner, seeds: list[dict]) -> list[dict]:
    """The judge_question shots exactly as the leaf's pipeline builds them."""
    return pipeline.judge_shots(SimpleNamespace(prompt_items=seeds, runner=runner), "judge_question")


async def question_row(case: Case, kind: str, question: str, index: int) -> dict:
    leaf, pipeline, runner, held = case.leaf, case.pipeline, case.runner, case.held
    fields = {"task_description": str(leaf.data.get("task_description", "")).strip(), "question": question}
    if pipeline.PROMPTS == "skill_grounded":
        fields["new_context"] = held.get("context", "")
    from labtax.generate.gate.relevance import question_turns

    shots = question_shots(pipeline, runner, case.seeds)
    own, others = question_turns(fields["task_description"], fields.get("new_context", ""))  # as generation asks
    verdict, relevance = await asyncio.gather(
        judged(runner, "judge_question", fields, index, shots, pipeline.MIN_SCORE),
        relevance_of(runner, own, others, question),
    )
    row = {"leaf": leaf.path, "kind": kind, "good": kind == "good", "check": None, "relevance": relevance[0]}
    return {**row, "end": None, "question": question, **verdict}  # no `unfinished` check on questions


async def knowledge_row(job, held: dict, items: list[dict], kind: str, answer: str, index: int) -> dict:
    from labtax.generate.gate.checks import check_answer
    from labtax.generate.pipelines import knowledge

    failure = check_answer(held["question"], answer, "stop")
    stage, fields = knowledge.final_judge(job, held, answer)  # exactly as knowledge.final_judge builds it
    shots = knowledge.judge_shots(job, stage)
    own, others = knowledge.relevance_turns(job, {**held, "answer": answer}, index)  # as generation asks
    verdict, relevance = await asyncio.gather(
        judged(job.runner, stage, fields, index, shots, knowledge.MIN_SCORE),
        relevance_of(job.runner, own, others, answer),
    )
    return {
        "leaf": job.leaf.path,
        "kind": kind,
        "good": kind == "good",
        "check": failure.reason if failure else None,
        "relevance": relevance[0],
        "end": relevance[1],
        "compared_with": len(others),
        "answer": answer,
        **verdict,
    }


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
            shots = pipeline.judge_shots(SimpleNamespace(prompt_items=prompt_items, runner=runner), "judge_pair")
            case = Case(leaf, pipeline, runner, held, prompt_items, shots)
            answers = {"good": held["answer"], **corrupt(held, prompt_items, other)}
            questions = {
                "good": held["question"],
                "off_topic_task": OFF_TOPIC_TASK,
                "other_leaf_task": other[0]["question"] if other else None,
                "unanswerable": UNANSWERABLE_TASK,
                "unsafe": UNSAFE_TASK,
            }
            question_case = Case(leaf, pipeline, runner, held, prompt_items, [])
            # The leaf's calibration as generation runs it (generate/calibrate.py), on its other seeds only: the
            # thresholds it chooses decide the held-out rows in the "calibrated" column.
            job = SimpleNamespace(leaf=leaf, pipeline=pipeline, runner=runner, prompt_items=prompt_items)
            job.heldout = prompt_items
            report = await calibrate(job, pipeline.MIN_SCORE)
            thresholds = {"judge": report.threshold, "relevance": report.relevance_threshold}
            rows = await asyncio.gather(
                *(pair_row(case, kind, answer, 2_000_000 + i) for i, (kind, answer) in enumerate(answers.items()))
            )
            pair_rows += [{**row, "calibrated": thresholds} for row in rows]
            question_rows += await asyncio.gather(
                *(question_row(question_case, kind, q, 3_000_000 + n) for kind, q in questions.items() if q)
            )
        for n, leaf in enumerate(knowledge_leaves()):
            runner = StageRunner(teacher, cache, load_prompts(knowledge.PROMPTS), judge=judge)
            items = seeds.qa_items(leaf)
            # Held out: the last question of each chunk, one at a time; the leaf's other seeds are its prompt items.
            last = {item["context"]: k for k, item in enumerate(items)}
            for k in sorted(last.values()):
                held = items[k]
                prompt_items = items[:k] + items[k + 1 :]
                job = SimpleNamespace(leaf=leaf, prompt_items=prompt_items, runner=runner, chunks=[])
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
                    *(knowledge_row(job, held, items, kind, a, 4_000_000 + k) for kind, a in answers.items())
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
            question_rows, {"judge": judge_verdict, "relevance": relevance_verdict, "both": combined_verdict}
        ),
        "knowledge": summarize_part(
            knowledge_rows,
            {
                "checks_and_judge": checks_then(judge_verdict),
                "grounding_relevance": relevance_verdict,
                "both": checks_then(combined_verdict),
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
    """Relevance alone at its threshold; a row it could not measure is not rejected by it (as in generation)."""
    from labtax.generate.gate.relevance import THRESHOLD as RELEVANCE_THRESHOLD
    from labtax.generate.gate.relevance import unfinished

    if row.get("end") is not None and unfinished(row["end"]):
        return False, 0.0  # the likelihoods' own cheap check: the model would not end the answer there
    return (row["relevance"] is None or row["relevance"] >= RELEVANCE_THRESHOLD), row["relevance"]


def combined_verdict(row: dict) -> tuple[bool, float | None]:
    """Relevance, then self-consistency (pair rows), then the judge: all must accept; ranked by
    min(relevance, judge), 0 where self-consistency rejected."""
    rel_ok, rel = relevance_verdict(row)
    judge_ok, value = judge_verdict(row)
    if row.get("inconsistent"):
        return False, 0.0
    return rel_ok and judge_ok, value if rel is None else min(rel, value)


def calibrated_verdict(row: dict) -> tuple[bool, float | None]:
    """The gate at the thresholds the leaf's calibration chose on its other seeds (judge: 0.5 where it chose
    none; relevance: gate/relevance.THRESHOLD), exactly as generation decides a candidate."""
    from labtax.generate.gate.relevance import THRESHOLD as RELEVANCE_THRESHOLD
    from labtax.generate.gate.relevance import unfinished

    chosen = row.get("calibrated") or {}
    judge_at = chosen.get("judge") if chosen.get("judge") is not None else THRESHOLD
    relevance_at = chosen.get("relevance") if chosen.get("relevance") is not None else RELEVANCE_THRESHOLD
    value = judge_value(row)
    if row["check"] or row.get("inconsistent") or (row.get("end") is not None and unfinished(row["end"])):
        return False, 0.0
    if row["relevance"] is not None and row["relevance"] < relevance_at:
        return False, min(row["relevance"], value)
    if row["judge_error"]:
        judged_ok = False
    elif row["probability"] is None:
        judged_ok = row["judge_accepted"]
    else:
        judged_ok = row["probability"] >= judge_at
    return judged_ok, value if row["relevance"] is None else min(row["relevance"], value)


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
            "gate": checks_then(combined_verdict),  # checks, relevance, self-consistency, then the judge
            "calibrated": calibrated_verdict,  # the same at the thresholds the leaf's calibration chose
        },
    )


def summarize_part(rows: list[dict], verdicts: dict[str, Callable[[dict], tuple[bool, float | None]]]) -> dict:
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
            return sum(1.0 if g > b else 0.5 if g == b else 0.0 for g, b in pairs) / len(pairs) if pairs else None

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
    title = "Question judge (held-out seed question vs bad tasks)"
    columns = {"judge": "judge_question", "relevance": "question relevance alone", "both": "relevance, then judge"}
    print(table(title, question, columns, kind_auc=True))
    print()
    print(
        table(
            "Knowledge faithfulness (held-out seed answer vs bad answers; grounding relevance: candidate design)",
            know,
            {
                "checks_and_judge": "checks + judge_faithful",
                "grounding_relevance": "grounding relevance alone",
                "both": "checks, relevance, judge",
            },
            kind_auc=True,
        )
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
