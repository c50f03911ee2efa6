"""Render the pull-request comment as GitHub Markdown, readable at GitHub's 800 px content width.

Everything that comes from a contributor (leaf paths, questions, documents) or from the teacher
(answers, judge reasons) is untrusted. It reaches the Markdown only through labtax.markdown's doors:

- `inline()` for text inside a sentence, a heading, a table cell or a <summary>: one line, length
  capped, HTML and Markdown punctuation turned into entities (so no tag, image, link, emphasis or
  table cell can be opened or closed), and @-mentions, issue references (#123, org/repo#123,
  GH-123) and bare URLs broken with a zero-width space (GitHub resolves those on the rendered text,
  after entities are decoded).
- `text_block()` for whole texts (questions, answers): a blockquote escaped like `inline()` line by
  line, which wraps (a code block clips long lines at about 95 characters), or, for code-like text,
  a fenced block whose fence is longer than any backtick run in the text, so nothing inside can close it.

Numbers go through `num()` / `duration()`, which fall back to `inline()` for anything that is not
a number. The comment is kept under GitHub's 65,536-character limit by measuring UTF-8 bytes (never
fewer than characters or UTF-16 units, however GitHub counts) and cutting whole pieces, richest
first, with a note that says what was cut.

What the comment says of each part (statuses, the gate's verdict in words, the actions to take, the leaves'
short names) is decided in comment/verdicts.py; this module renders it with the samples, tables and budget.

Width: tables hold only short cells (a leaf's last folder, counts, reason names), so the widest stays
within 800 px (tests/test_comment_width.py measures it); full paths and long text live in paragraphs,
lists and <details>, which wrap.
"""

from __future__ import annotations

from labtax.comment import GITHUB_COMMENT_LIMIT, MARKER
from labtax.comment.verdicts import (
    FAIL,
    INFO,
    TITLE,
    WARN,
    as_dict,
    as_int,
    as_list,
    as_number,
    change_text,
    data_status,
    fix_plurals,
    gate_of,
    gate_sentence,
    gate_text,
    leaf_note,
    leaf_status,
    lint_status,
    name_of,
    render_actions,
    short_names,
    top_reasons,
    train_status,
    worst,
)
from labtax.markdown import clean, code, duration, inline, num, size, text_block
from labtax.records.types import (
    SMOKE_TEST,
    UNVETTED,
    LeafSummary,
    Rejected,
    RunSummary,
    Sample,
)
from labtax.wording import counted

SAMPLE_MESSAGE_CHARS = 1500
REDUCED_MESSAGE_CHARS = 500
REJECTED_TEXT_CHARS = 800
EXAMPLE_TEXT_CHARS = 800
PREVIEW_CHARS = 100
MAX_LINT_FINDINGS = 50
MAX_REASONS = 6
NOTE_RESERVE = 800
# Table cells stay short so the widest table fits 800 px: a leaf's name, a reason name, at most this many characters.
LEAF_NAME_CHARS = 28
REASON_CHARS = 16
TABLE_REASONS = 3
GATE_WARNING = UNVETTED
# A fork's pull request runs the fork's own copy of generate.yml, so what its artifact says cannot be
# vouched for by the job that posts: every verdict from it carries this mark (see docs/ci.md).
NOT_VERIFIED = " _(not verified)_"
UNVERIFIED_NOTE = (
    f"> {WARN} **Values from the fork's run, not verified.** GitHub runs a fork's pull request with the "
    "fork's own workflow files, so the counts, samples and verdicts below are what that run reported: "
    "this repository's labtax escaped them but did not recompute them.\n\n"
)


# --------------------------------------------------------------------------- pieces


def render_header(
    summary: RunSummary,
    lint: dict | None,
    train: dict | None,
    unverified: bool = False,
    names: dict[str, str] | None = None,
) -> str:
    leaves, run = summary["leaves"], summary["run"]
    names = names if names is not None else short_names(leaves)
    parts = [("Data", data_status(leaves))]
    if (ls := lint_status(lint)) is not None:
        parts.append(("Lint", ls))
    if (ts := train_status(train)) is not None:
        parts.append(("Training", ts))
    skipped = run.get("skipped", [])
    overall = worst(*(status for _, (status, _) in parts), *([FAIL] if skipped else []))
    mark = NOT_VERIFIED if unverified else ""
    which = [name.lower() for name, (status, _) in parts if status == overall]
    if skipped and overall == FAIL and "lint" not in which:
        which.insert(0, "lint")
    title = f"{overall} {TITLE[overall]}" + (f": {', '.join(which)}" if overall in (FAIL, WARN) and which else "")
    lines = [MARKER, f"## 🧪 labtax: {title}{mark}", ""]
    lines.append(" · ".join(f"**{name}:** {status} {text}{mark}" for name, (status, text) in parts))
    lines.append("")
    if unverified:
        lines.append(UNVERIFIED_NOTE.rstrip("\n"))
        lines.append("")
    meta = []
    if run.get("teacher") is not None or run.get("model") is not None:
        teacher = code(run.get("teacher", "?"), 60)
        meta.append(f"teacher {teacher}" + (f" ({code(run['model'], 80)})" if run.get("model") is not None else ""))
    if run.get("judge_scores") is False:  # said: the gate ran without its likelihood checks
        meta.append("likelihood checks off (the judge endpoint cannot score replies; --judge-tokenizer turns them on)")
    if run.get("commit"):
        meta.append(f"commit {code(str(run['commit'])[:12], 12)}")
    if run.get("seconds") is not None:
        meta.append(f"generation took {duration(run.get('seconds'))}")
    if run.get("started"):
        meta.append(f"started {inline(run['started'], 40)}")
    versions = run.get("pipeline_versions")
    if isinstance(versions, dict):
        versions = [f"{k} {v}" for k, v in versions.items()]
    if isinstance(versions, list) and versions:
        meta.append("prompts " + ", ".join(inline(v, 40) for v in versions[:6]))
    if meta:
        lines += ["<sub>" + " · ".join(meta) + "</sub>", ""]
    if run.get("teacher") == "embedded":  # said plainly: a reviewer must not read this data as training data
        lines += [f"⚠️ **Smoke test:** {SMOKE_TEST[0].upper()}{SMOKE_TEST[1:]}.", ""]
    if skipped:  # never narrow the selection silently: the reviewer sees what got no data, and why
        shown = ", ".join(code(s.get("leaf", "?"), 120) for s in skipped[:10])
        more = f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        lines += [
            f"⚠️ **{counted(len(skipped), 'leaf', 'leaves', thousands=True)} not generated** because of lint errors (fix them, then push again): {shown}{more}",
            "",
        ]
    return "\n".join(lines) + "\n" + render_actions(leaves, names, lint, train)


def rejected_summary(counts: dict[str, int] | None) -> str:
    """A table cell: the total, then the commonest reasons one per line (short, so the column stays narrow)."""
    if not counts:
        return "0" if counts is not None else "–"
    total = sum(counts.values())
    shown = top_reasons(counts, TABLE_REASONS, REASON_CHARS)
    if len(counts) > TABLE_REASONS:
        shown.append(f"+{len(counts) - TABLE_REASONS} more")
    return f"{total:,}<br><sub>{'<br>'.join(shown)}</sub>"


TABLE_HEAD = "| Leaf | Accepted | Rejected | Teacher calls |\n|---|---|---|---|\n"


def overview_rows(leaves: dict[str, LeafSummary], names: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """The leaf table: one short row per leaf (no run-wide wall clock: leaves run at the same time)."""
    names = names if names is not None else short_names(leaves)
    rows = []
    for leaf, stats in leaves.items():
        kind = f"<br><sub>{inline(stats['kind'], 20)}</sub>" if stats.get("kind") else ""
        gate = gate_of(stats)
        accepted = f"{num(stats.get('accepted'))} / {num(stats.get('requested'))}"
        if gate is not None:  # on two lines: the column stays narrow
            good, bad = gate_text(gate).split(" · ")
            accepted += f"<br><sub>{WARN + ' ' if gate.unvetted else ''}{good},<br>{bad}</sub>"
        if isinstance(held := stats.get("held_back"), int) and held:
            accepted += f"<br><sub>{WARN} {num(held)} held back, unvetted</sub>"
        calls = num(stats.get("teacher_calls"))
        if stats.get("cached_calls"):
            calls += f"<br><sub>+{num(stats.get('cached_calls'))} cached</sub>"
        if stats.get("prompts_shortened"):  # the model's context window is smaller than the prompts
            calls += f"<br><sub>{WARN} {num(stats.get('prompts_shortened'))} shortened to fit</sub>"
        rows.append(
            f"| {leaf_status(stats)} {code(name_of(names, leaf), LEAF_NAME_CHARS)}{kind} | {accepted} "
            f"| {rejected_summary(stats.get('rejected'))} | {calls} |\n"
        )
    return TABLE_HEAD, rows


def path_line(leaf, names: dict[str, str]) -> str:
    return f"- {code(name_of(names, leaf), 80)}: {code(leaf)}\n"


def render_messages(messages, limit: int) -> str:
    out = []
    shown = [m for m in as_list(messages) if isinstance(m, dict) and m.get("role") != "system"]
    for message in shown:
        role = message.get("role")
        label = {"user": "Question", "assistant": "Answer"}.get(str(role), inline(role, 20))
        out.append(f"**{label}**\n\n{text_block(message.get('content', ''), limit)}")
    return "\n".join(out) if out else "_(no messages)_\n"


def preview(messages) -> str:
    users = [m for m in as_list(messages) if isinstance(m, dict) and m.get("role") == "user"]
    return inline(users[-1].get("content", "") if users else "(no question)", PREVIEW_CHARS)


def render_judge(judge: dict) -> str:
    """The judge's verdict on a sample: its probability that the sample is good when it gave one, else scores.
    Its criteria are read tolerantly: an older labtax wrote `scores` and `reasons` instead."""
    scores = as_dict(judge.get("scores"))  # records before schema/records/v1
    reasons = as_dict(judge.get("reasons"))
    for criterion in as_list(judge.get("criteria")):  # schema/records/v1: one entry per criterion
        criterion = as_dict(criterion)
        name = str(criterion.get("name", "?"))
        if "score" in criterion:
            scores[name] = criterion["score"]
        if criterion.get("reason"):
            reasons[name] = criterion["reason"]
    probability = as_number(judge.get("probability"))
    if probability is not None and not 0 <= probability <= 1:
        probability = None
    if not scores and not reasons and probability is None:
        return ""
    parts = [f"probability good {probability:.2f}"] if probability is not None else []
    for name in list(dict.fromkeys([*scores, *reasons]))[:6]:
        reason = clean(reasons.get(name)).strip()
        if reason == clean(scores.get(name)).strip():  # a judge's one-digit reply repeats its score: no reason
            reason = ""
        if probability is not None:  # the probability replaces the bare scores; reasons still say why
            if reason:
                parts.append(f"{inline(name, 30)}: {inline(reason, 160)}")
            continue
        text = inline(name, 30)
        if name in scores:
            text += f" {num(scores[name], 2) if isinstance(scores[name], float) else num(scores[name])}"
        if reason:
            text += f" ({inline(reason, 160)})"
        parts.append(text)
    if judge.get("vetted") == "no":
        parts.append("unvetted: the judge could not tell this leaf's good seeds from corrupted ones")
    return "<sub>Judge: " + " · ".join(parts) + "</sub>\n"


def render_sample(number: int, sample: Sample, limit: int) -> str:
    return (
        f"<details><summary>Sample {number}: {preview(sample['messages'])}</summary>\n\n"
        f"{render_messages(sample['messages'], limit)}\n{render_judge(dict(sample['judge']))}\n</details>\n\n"
    )


def render_candidate(candidate, limit: int) -> str:
    if isinstance(candidate, dict) and isinstance(candidate.get("messages"), list):
        return render_messages(candidate["messages"], limit)
    if isinstance(candidate, dict) and candidate and all(isinstance(v, str) for v in candidate.values()):
        filled = [(key, value) for key, value in candidate.items() if value.strip()]  # v1 records: "" = absent
        if not filled:
            return "_(no candidate text)_\n"
        return "\n".join(
            f"**{inline('Reply' if key == 'raw' else key.capitalize(), 40)}**\n\n{text_block(value, limit)}"
            for key, value in filled[:4]
        )
    if candidate in (None, "", {}, []):
        return "_(no candidate text)_\n"
    return text_block(candidate, limit)


def render_rejected(record: Rejected, limit: int) -> str:
    reason = inline(record["reason"] or "unknown", 60)
    stage = f" at {inline(record['stage'], 40)}" if record["stage"] else ""
    candidate: object = record.get("candidate")
    if isinstance(candidate, dict) and "messages" in candidate:
        title = preview(candidate.get("messages"))
    elif isinstance(candidate, dict) and "question" in candidate:
        title = inline(candidate["question"], PREVIEW_CHARS)
    else:
        title = inline(candidate, PREVIEW_CHARS)
    if not title and isinstance(candidate, dict):  # an empty question: the first text there is says what it was
        title = next((inline(v, PREVIEW_CHARS) for v in candidate.values() if isinstance(v, str) and v.strip()), "")
    detail = f"<sub>{inline(record['detail'], 300)}</sub>\n\n" if record["detail"] else ""
    return (
        f"<details><summary>{FAIL} {reason}{stage}: {title}</summary>\n\n"
        f"{detail}{render_candidate(candidate, limit)}\n</details>\n\n"
    )


def render_leaf(
    leaf: str,
    stats: LeafSummary,
    samples: list[Sample],
    rejected: list[Rejected],
    message_chars: int,
    names: dict[str, str] | None = None,
) -> str:
    names = names if names is not None else short_names([leaf])
    about = [code(leaf)]
    if stats.get("kind"):
        about.append(inline(stats["kind"], 20))
    reasons = top_reasons(stats.get("rejected", {}), MAX_REASONS)
    if reasons:
        about.append("rejected: " + ", ".join(reasons))
    lines = [f"### {leaf_status(stats)} {code(name_of(names, leaf), 80)}\n\n<sub>{' · '.join(about)}</sub>\n\n"]
    gate = gate_of(stats)
    if gate is not None:
        lines.append(f"<sub>Judge gate: {gate_sentence(gate)}.</sub>\n\n")
        if gate.unvetted:
            lines.append(f"> {WARN} **{GATE_WARNING[0].upper() + GATE_WARNING[1:]}.** Read them before merging.\n\n")
    if note := leaf_note(stats):
        lines.append(f"> {inline(note, 300)}\n\n")
    if samples:
        lines.append(f"**Accepted samples** ({len(samples)} of {num(stats.get('accepted'))})\n\n")
        lines += [render_sample(i, s, message_chars) for i, s in enumerate(samples, 1)]
    else:
        lines.append("_No accepted samples to show._\n")
    if rejected:
        total = sum(stats.get("rejected", {}).values())
        lines.append(f"\n**Rejected** ({len(rejected)} of {max(total, len(rejected)):,})\n\n")
        lines += [render_rejected(r, min(message_chars, REJECTED_TEXT_CHARS)) for r in rejected]
    return "".join(lines) + "\n"


def render_lint(lint: dict, max_findings: int, mark: str = "") -> str:
    """Findings as a list (full paths and messages wrap; a table of them would not fit 800 px)."""
    status, text = lint_status(lint) or (INFO, "")
    files = as_int(lint.get("files"))
    where = f" in {counted(files, 'file', thousands=True)}" if files is not None else ""
    out = [f"### Lint: {status} {text}{where}{mark}\n\n"]
    findings = [as_dict(f) for f in as_list(lint.get("findings"))]
    findings.sort(key=lambda f: (f.get("level") != "error", str(f.get("path")), as_int(f.get("line")) or 0))
    if findings and max_findings > 0:
        for f in findings[:max_findings]:
            icon = FAIL if f.get("level") == "error" else WARN
            at = code(f.get("path", "?")) + f":{num(f.get('line'))}:{num(f.get('col'))}"
            hint = f"<br><sub>{inline(f['hint'], 200)}</sub>" if f.get("hint") else ""
            out.append(
                f"- {icon} {inline(f.get('level', '?'), 10)} {at} {inline(f.get('rule_id', '?'), 20)}: "
                f"{inline(f.get('message', ''), 300)}{hint}\n"
            )
    if len(findings) > max_findings:
        out.append(f"\n_… and {len(findings) - max_findings:,} more findings not shown._\n")
    return "".join(out) + "\n"


def render_train(train: dict, examples: int, mark: str = "", names: dict[str, str] | None = None) -> str:
    status, verdict = train_status(train) or (INFO, "")
    phases = [as_dict(p) for p in as_list(train.get("phases"))]
    if names is None:
        names = short_names([leaf for p in phases for leaf in as_dict(p.get("heldout"))])
    out = [f"### Training smoke test: {status} {verdict}{mark}\n\n"]
    if train.get("verdict_line"):
        out.append(f"{inline(fix_plurals(clean(train['verdict_line'])), 400)}\n\n")
    if phases:
        out.append("| Phase | Steps | Time | Train loss (first → last) | Verdict |\n|---|---|---|---|---|\n")
        for p in phases:
            phase_verdict = train_status({"verdict": p["verdict"]}) if "verdict" in p else None
            out.append(
                f"| {inline(p.get('name', '?'), 20)} | {num(p.get('steps'))} | {duration(p.get('seconds'))} "
                f"| {num(p.get('train_loss_first'), 3)} → {num(p.get('train_loss_last'), 3)} "
                f"| {' '.join(phase_verdict) if phase_verdict else '–'} |\n"
            )
        heldout = [
            (p.get("name", "?"), leaf, as_dict(v)) for p in phases for leaf, v in as_dict(p.get("heldout")).items()
        ]
        if heldout:
            out.append("\n| Held-out leaf | Phase | Loss before | Loss after | Change |\n|---|---|---|---|---|\n")
            for phase, leaf, v in heldout[:40]:
                before, after = v.get("loss_before"), v.get("loss_after")
                role = f"<br><sub>{inline(v['role'], 20)}</sub>" if v.get("role") else ""
                out.append(
                    f"| {code(name_of(names, leaf), LEAF_NAME_CHARS)}{role} | {inline(phase, 20)} | {num(before, 3)} "
                    f"| {num(after, 3)} | {change_text(before, after) or '–'} |\n"
                )
            if len(heldout) > 40:
                out.append(f"\n_… and {len(heldout) - 40:,} more held-out rows not shown._\n")
        out.append("\n")
    for ex in [as_dict(e) for e in as_list(train.get("examples"))][:examples]:
        out.append(
            f"<details><summary>Before / after: {inline(ex.get('question', ''), PREVIEW_CHARS)}</summary>\n\n"
            f"Leaf {code(ex.get('leaf', '?'))}\n\n**Question**\n\n{text_block(ex.get('question', ''), EXAMPLE_TEXT_CHARS)}\n"
            + (
                f"**Reference answer (held out)**\n\n{text_block(ex['reference'], EXAMPLE_TEXT_CHARS)}\n"
                if ex.get("reference")
                else ""
            )
            + f"**Before training**\n\n{text_block(ex.get('before', ''), EXAMPLE_TEXT_CHARS)}\n"
            f"**After training**\n\n{text_block(ex.get('after', ''), EXAMPLE_TEXT_CHARS)}\n</details>\n\n"
        )
    return "".join(out) + "\n"


# --------------------------------------------------------------------------- assembly


class _Budget:
    def __init__(self, left: int):
        self.left = left

    def fits(self, text: str) -> bool:
        return size(text) <= self.left

    def take(self, text: str) -> bool:
        if not self.fits(text):
            return False
        self.left -= size(text)
        return True


def _first_fitting(variants, budget: _Budget, cap_bytes: int) -> tuple[int, str]:
    """Index and text of the richest variant under both the section cap and the budget."""
    for index, text in enumerate(variants):
        if size(text) <= cap_bytes and budget.take(text):
            return index, text
    return len(variants), ""


def _leaf_table(leaves: dict[str, LeafSummary], names: dict[str, str], budget: _Budget, cut: list[str]) -> str:
    """The leaf table and, folded under it, each shown leaf's full path; rows cut (and said so) past the budget."""
    head, rows = overview_rows(leaves, names)
    if not rows:
        return ""
    table_budget = _Budget(max(budget.left, 0) // 2)
    more_row = "| … | | | |\n"
    paths_head, paths_foot = "<details><summary>Full leaf paths</summary>\n\n", "\n</details>\n"
    if not table_budget.take(head) or table_budget.left < size(more_row + paths_head + paths_foot):
        return ""
    table_budget.left -= size(more_row + paths_head + paths_foot) + 40
    shown, paths = 0, []
    for leaf, row in zip(leaves, rows):
        line = path_line(leaf, names)
        if not table_budget.take(row + line):
            break
        shown += 1
        paths.append(line)
    table = head + "".join(rows[:shown])
    if shown < len(rows):
        table += f"| _{len(rows) - shown:,} more leaves not shown_ | | | |\n"
        cut.append(f"{len(rows) - shown:,} rows of the leaf table")
    table += "\n" + paths_head + "".join(paths) + paths_foot
    budget.take(table)
    return table + "\n"


def render_comment(
    inputs,
    *,
    samples_per_leaf: int = 3,
    rejected_per_leaf: int = 2,
    max_chars: int = GITHUB_COMMENT_LIMIT,
    footer: str = "",
    unverified: bool = False,
) -> str:
    """The whole comment, at most `max_chars` (UTF-8 bytes), cutting the least important pieces first.

    `unverified`: the inputs come from a run the pull request controlled (a fork's); every verdict says so.
    """
    summary, lint, train = inputs.summary, inputs.lint, inputs.train
    leaves = dict(sorted(inputs.leaves().items(), key=lambda kv: str(kv[0])))
    trained = [leaf for p in as_list(as_dict(train).get("phases")) for leaf in as_dict(as_dict(p).get("heldout"))]
    names = short_names([*leaves, *trained])
    header = render_header(summary, lint, train, unverified, names)
    mark = NOT_VERIFIED if unverified else ""
    foot = f"\n<sub>{inline(footer, 200)}</sub>\n" if footer else ""
    budget = _Budget(max_chars - size(header) - size(foot) - NOTE_RESERVE)
    cut: list[str] = []

    training = ""
    if train is not None:
        variants = [
            render_train(train, 3, mark, names),
            render_train(train, 1, mark, names),
            render_train({**train, "examples": []}, 0, mark, names),
            render_train({"verdict": train.get("verdict"), "verdict_line": train.get("verdict_line")}, 0, mark, names),
        ]
        index, training = _first_fitting(variants, budget, max_chars // 5)
        if index:
            cut.append("training details" if index < len(variants) else "the training section")
    lint_text = ""
    if lint is not None:
        total = len(as_list(lint.get("findings")))
        limits = (MAX_LINT_FINDINGS, 20, 10, 5, 0)
        index, lint_text = _first_fitting([render_lint(lint, n, mark) for n in limits], budget, max_chars // 4)
        if index == len(limits):
            cut.append("the lint section")
        elif index and total > limits[index]:
            cut.append(f"{total - limits[index]:,} lint findings")

    table = _leaf_table(leaves, names, budget, cut)

    sections = []
    reduced = dropped = 0
    all_rejected = inputs.rejected(leaves, rejected_per_leaf) if rejected_per_leaf > 0 else {}
    for leaf, stats in leaves.items():
        if dropped:
            dropped += 1
            continue
        samples = inputs.samples(leaf, samples_per_leaf) if samples_per_leaf > 0 else []
        rejected = all_rejected.get(leaf, [])
        full = render_leaf(leaf, stats, samples, rejected, SAMPLE_MESSAGE_CHARS, names)
        if budget.take(full):
            sections.append(full)
            continue
        small = render_leaf(leaf, stats, samples[:1], rejected[:1], REDUCED_MESSAGE_CHARS, names)
        if budget.take(small):
            sections.append(small)
            reduced += 1
            continue
        dropped = 1
    if reduced:
        cut.append(f"samples of {counted(reduced, 'leaf', 'leaves', thousands=True)} (fewer and shorter shown)")
    if dropped:
        cut.append(f"sample details of {dropped:,} of {counted(len(leaves), 'leaf', 'leaves', thousands=True)}")

    note = ""
    if cut:
        note = (
            f"> ✂️ **Cut to fit GitHub's {GITHUB_COMMENT_LIMIT:,}-character comment limit:** "
            + "; ".join(cut)
            + ". Run `labtax comment` locally or open the job summary for the full report.\n\n"
        )
    body = header + note + table + "".join(sections) + lint_text + training + foot
    if size(body) > max_chars:  # cannot happen with the reserve above; never post an over-long body
        body = header + note + f"_Report too large to show ({size(body):,} bytes)._\n" + foot
    return body
