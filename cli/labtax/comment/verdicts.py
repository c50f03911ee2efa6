"""What the pull-request comment says about a run before any of it is rendered: each part's status (data, lint,
training), the gate's verdict on a leaf in words, the actions a contributor should take, and the leaves' short
names. comment/render.py renders these with the samples and tables; every contributor text still goes through
labtax.markdown's doors here too.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable

from labtax.comment.inputs import LEAF_FILE
from labtax.markdown import clean, code, inline, num
from labtax.records.types import GateVerdict, LeafSummary, note_with_verdict
from labtax.wording import counted

OK, WARN, FAIL, INFO = "✅", "⚠️", "❌", "ℹ️"
_RANK = {OK: 0, INFO: 0, WARN: 1, FAIL: 2}
TITLE = {OK: "looks good", INFO: "nothing to check", WARN: "needs a look", FAIL: "needs changes"}

MAX_ACTION_LEAVES = 5
# What to check when most of a leaf's candidates were rejected for this reason.
_ADVICE = {
    "judge_score": "Check that its seed answers are correct and, for knowledge, that the documents say what the questions ask (the judge scored the candidates low)",
    "unfaithful": "Check that the documents answer its seed questions (the judge found answers the documents do not support)",
    "no_documents": "Check the document repo, commit and patterns in its qna.yaml (its documents could not be read)",
    "off_topic": "Make its seed questions distinct and their answers specific to them (answers fit other questions as well as their own)",
    "truncated": "Shorten its seed answers (answers ran past the length limit)",
    "duplicate": "Add more varied seed examples (candidates repeated each other)",
    "parse_failure": "Re-run, or use a stronger teacher (the judge's replies carried no score)",
    "teacher_error": "Re-run the job: finished calls are cached (the teacher failed)",
}
_DEFAULT_ADVICE = (
    "Read the rejected candidates in its section below; more varied, correct seed examples or a stronger teacher help"
)


def as_int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_number(value) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def as_list(value) -> list:
    return value if isinstance(value, list) else []


def worst(*statuses) -> str:
    present = [s for s in statuses if s]
    return max(present, key=lambda status: _RANK.get(status, 0)) if present else INFO


def fix_plurals(text: str) -> str:
    """Numbers a training report writes as "1 question(s)" (or, from an older labtax, "5 leaf/leaves"), in
    plain English."""
    text = re.sub(
        r"\b(\d[\d,]*) leaf/leaves\b",
        lambda m: counted(int(m[1].replace(",", "")), "leaf", "leaves", thousands=True),
        text,
    )
    return re.sub(r"\b(\d[\d,]*) (\w+)\(s\)", lambda m: f"{m[1]} {m[2]}{'' if m[1] == '1' else 's'}", text)


# --------------------------------------------------------------------------- names


def _folders(leaf: str) -> list[str]:
    parts = [p for p in str(leaf).split("/") if p]
    if len(parts) > 1 and parts[-1] == LEAF_FILE:
        parts = parts[:-1]
    return parts or [str(leaf)]


def short_names(leaves: Iterable) -> dict[str, str]:
    """Each leaf's last folder, with as many parent folders as it takes to tell leaves apart."""
    paths = list(dict.fromkeys(str(leaf) for leaf in leaves))
    parts = {p: _folders(p) for p in paths}
    depth = dict.fromkeys(paths, 1)
    while True:
        names = {p: "/".join(parts[p][-depth[p] :]) for p in paths}
        seen = Counter(names.values())
        clashing = [p for p in paths if seen[names[p]] > 1 and depth[p] < len(parts[p])]
        if not clashing:
            return names
        for p in clashing:
            depth[p] += 1


def name_of(names: dict[str, str], leaf) -> str:
    return names.get(str(leaf)) or _folders(str(leaf))[-1]


# --------------------------------------------------------------------------- verdicts


def gate_of(stats: LeafSummary) -> GateVerdict | None:
    """The judge gate's result on the leaf's own good and bad examples, when the summary has a whole one."""
    verdict = GateVerdict.from_json(stats.get("gate"))
    return verdict if verdict is not None and verdict.separates is not None else None


def gate_text(gate: GateVerdict) -> str:
    return f"gate {gate.good_accepted}/{gate.good_total} good · {gate.bad_rejected}/{gate.bad_total} bad"


def gate_sentence(gate: GateVerdict) -> str:
    precision = (
        f" (precision {gate.precision:.2f} on these; on the teacher's own mistakes, which are harder to tell, it is "
        "lower: bench/graded)"
        if gate.precision is not None
        else ""
    )
    return (
        f"the judge accepted {gate.good_accepted} of {gate.good_total} of the leaf's held-out seed examples "
        f"and rejected {gate.bad_rejected} of {gate.bad_total} corrupted copies of them{precision}"
    )


def leaf_note(stats: LeafSummary) -> str:
    """The generator's note; before it, the gate's warning when the gate is not shown on its own (calibration
    incomplete). Built from the gate's field, never read back from the note's prose."""
    gate = gate_of(stats)
    if gate is not None and gate.unvetted:  # said by the gate's own lines
        return clean(stats.get("note")).strip()
    return clean(note_with_verdict(stats)).strip()


def leaf_status(stats: LeafSummary) -> str:
    requested, accepted = stats.get("requested"), stats.get("accepted")
    if requested is None or accepted is None:
        return WARN
    gate = gate_of(stats)
    if accepted >= requested:  # OK only where the leaf's calibration showed the judge tells good from bad
        return OK if gate is not None and gate.separates is True else WARN
    return FAIL if accepted == 0 else WARN


def data_status(leaves: dict[str, LeafSummary]) -> tuple[str, str]:
    if not leaves:
        return INFO, "no changed leaves"
    requested = sum(s.get("requested", 0) for s in leaves.values())
    accepted = sum(s.get("accepted", 0) for s in leaves.values())
    status = worst(*(leaf_status(s) for s in leaves.values()))
    return (
        status,
        f"{accepted:,} of {requested:,} requested samples accepted for {counted(len(leaves), 'leaf', 'leaves', thousands=True)}",
    )


def _lint_counts(lint: dict) -> tuple[int, int]:
    errors, warnings = as_int(lint.get("errors")), as_int(lint.get("warnings"))
    if errors is None or warnings is None:
        findings = [as_dict(f) for f in as_list(lint.get("findings"))]
        errors = sum(1 for f in findings if f.get("level") == "error")
        warnings = sum(1 for f in findings if f.get("level") == "warning")
    return errors, warnings


def lint_status(lint: dict | None) -> tuple[str, str] | None:
    if lint is None:
        return None
    errors, warnings = _lint_counts(lint)
    status = FAIL if errors else WARN if warnings else OK
    return status, f"{counted(errors, 'error', thousands=True)}, {counted(warnings, 'warning', thousands=True)}"


def train_status(train: dict | None) -> tuple[str, str] | None:
    if train is None:
        return None
    verdict = train.get("verdict")
    status = OK if verdict == "learned" else FAIL if verdict == "did not learn" else WARN
    return status, inline(verdict if verdict is not None else "no verdict", 60)


# --------------------------------------------------------------------------- what to do


def change_text(before, after) -> str | None:
    before, after = as_number(before), as_number(after)
    if before is None or after is None or not before:
        return None
    return f"{(after - before) / before:+.1%}"


def top_reasons(counts: dict[str, int], limit: int, chars: int = 40) -> list[str]:
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [f"{inline(reason, chars)} {num(n)}" for reason, n in ordered[:limit]]


def _advice(stats: LeafSummary) -> str:
    counts = stats.get("rejected", {})
    top = max(counts, key=lambda reason: counts[reason]) if counts else ""
    return _ADVICE.get(top, _DEFAULT_ADVICE)


def data_actions(leaves: dict[str, LeafSummary], names: dict[str, str]) -> list[str]:
    """What needs a look in the data: one line per leaf short of samples, one for the leaves the gate failed on."""
    items = []
    short = []
    unvetted = []
    judged_only = []
    for leaf, stats in leaves.items():
        requested, accepted = stats.get("requested"), stats.get("accepted")
        if requested is None or accepted is None or accepted < requested:
            short.append((leaf, stats))
        gate = gate_of(stats)
        if gate is not None and gate.unvetted:
            unvetted.append(leaf)
        elif (gate is None or gate.separates is None) and accepted:
            judged_only.append(leaf)
    short.sort(key=lambda item: -_RANK[leaf_status(item[1])])
    for leaf, stats in short[:MAX_ACTION_LEAVES]:
        status, name = leaf_status(stats), code(name_of(names, leaf), 80)
        requested, accepted = stats.get("requested"), stats.get("accepted")
        if requested is None or accepted is None:
            items.append(
                f"{status} **Data**, {name}: the summary has no accepted/requested counts for it: re-run generate."
            )
            continue
        reasons = top_reasons(stats.get("rejected", {}), 3)
        text = f"{status} **Data**, {name}: {accepted:,} of {requested:,} requested samples accepted"
        text += f" (rejected: {', '.join(reasons)})" if reasons else ""
        note = leaf_note(stats)
        note = f"<br><sub>{inline(note, 120)}</sub>" if note else ""
        items.append(f"{text}. {_advice(stats)}.{note}")
    if len(short) > MAX_ACTION_LEAVES:
        more = counted(len(short) - MAX_ACTION_LEAVES, "more leaf", "more leaves", thousands=True)
        items.append(f"… and {more} short of samples: see the table below.")
    if unvetted:
        shown, which = _leaf_list(unvetted, names)
        items.append(
            f"{WARN} **Data**, {shown}: the judge could not separate good from bad on {which} own examples (it "
            "scored held-out seeds against corrupted copies of them; numbers in each leaf's section), so their "
            "accepted samples are unvetted. Read them before merging, and check that the seed answers are correct "
            "and stand on their own."
        )
    held = {leaf: n for leaf, stats in leaves.items() if isinstance(n := stats.get("held_back"), int) and n > 0}
    if held:
        shown, _ = _leaf_list(list(held), names)
        items.append(
            f"{WARN} **Data**, {shown}: {counted(sum(held.values()), 'unvetted sample', thousands=True)} held back from "
            "the training files (in `review/unvetted.jsonl`, each with why): the gate could not vet them. "
            "Generating with `--keep-unvetted` puts them back."
        )
    if judged_only:
        shown, which = _leaf_list(judged_only, names)
        items.append(
            f"{WARN} **Data**, {shown}: accepted on the judge's score alone: the gate's calibration did not run or "
            f"did not finish on {which} own examples, so nothing measured that the judge tells good from bad here. "
            "Read the samples before merging."
        )
    return items


def _leaf_list(leaves: list[str], names: dict[str, str]) -> tuple[str, str]:
    """The first 8 leaves' short names and how many more, and "this leaf's" or "these leaves'"."""
    shown = ", ".join(code(name_of(names, leaf), 80) for leaf in leaves[:8])
    shown += f" and {len(leaves) - 8} more" if len(leaves) > 8 else ""
    return shown, "this leaf's" if len(leaves) == 1 else "these leaves'"


def lint_actions(lint: dict | None) -> list[str]:
    if lint is None:
        return []
    errors, warnings = _lint_counts(lint)
    if errors:
        them = "it" if errors == 1 else "them"
        return [
            f"{FAIL} **Lint**: {counted(errors, 'error', thousands=True)}: fix {them} (listed under *Lint* below); a leaf with lint errors gets no data."
        ]
    if warnings:
        return [
            f"{WARN} **Lint**: {counted(warnings, 'warning', thousands=True)}, worth a look (listed under *Lint* below); warnings never block."
        ]
    return []


def training_actions(train: dict | None, names: dict[str, str]) -> list[str]:
    """Why the training smoke test failed, in the contributor's terms, and how much weight it carries."""
    if train is None or train.get("verdict") == "learned":
        return []
    verdict = train.get("verdict")
    phases = [as_dict(p) for p in as_list(train.get("phases"))]
    model = code(train["model"], 60) if train.get("model") else "the student model"
    if verdict == "did not learn":
        failed = [p for p in phases if p.get("verdict") == "did not learn"]
        rose = []
        for p in failed:
            for leaf, row in as_dict(p.get("heldout")).items():
                row = as_dict(row)
                change = change_text(row.get("loss_before"), row.get("loss_after"))
                if row.get("role", "trained") == "trained" and change is not None and not change.startswith("-"):
                    rose.append(f"{code(name_of(names, leaf), 80)} ({change})")
        phase_names = ", ".join(inline(p.get("name", "?"), 40) for p in failed) or "a"
        what = (
            f"the held-out loss rose on {', '.join(rose[:6])}{' and more' if len(rose) > 6 else ''} in the {phase_names} phase"
            if rose
            else f"the held-out loss of the changed leaves did not fall in the {phase_names} phase"
        )
        steps = sum(as_int(p.get("steps")) or 0 for p in failed)
        examples = as_int(train.get("heldout_examples"))
        scale = f"{counted(steps, 'training step', thousands=True)} on {model}" + (
            f", scored on {counted(examples, 'held-out seed example', thousands=True)}" if examples is not None else ""
        )
        return [
            f"{FAIL} **Training**: {what}. This is a smoke signal ({scale}), not a judgement of the data: check that "
            "those leaves' seed answers are correct and consistent with each other (and, for knowledge, with the "
            "documents). If they are, a reviewer can accept the change with this verdict."
        ]
    if verdict == "stopped at time budget":
        return [
            f"{WARN} **Training**: stopped at its time budget before every phase ran, so nothing was judged: "
            "raise `--max-minutes` for `labtax train`, or re-run the job."
        ]
    line = fix_plurals(clean(train.get("verdict_line") or train.get("verdict") or "no verdict"))
    return [f"{WARN} **Training**: {inline(line, 300)}."]


def render_actions(leaves: dict[str, LeafSummary], names: dict[str, str], lint: dict | None, train: dict | None) -> str:
    items = lint_actions(lint) + data_actions(leaves, names) + training_actions(train, names)
    if not items:
        return ""
    return "**What to do**\n\n" + "".join(f"- {item}\n" for item in items) + "\n"
