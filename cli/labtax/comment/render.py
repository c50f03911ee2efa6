"""Render the pull-request comment as GitHub Markdown.

Everything that comes from a contributor (leaf paths, questions, documents) or from the teacher
(answers, judge reasons) is untrusted. It reaches the Markdown only through labtax.markdown's doors:

- `inline()` for text inside a sentence, a heading, a table cell or a <summary>: one line, length
  capped, HTML and Markdown punctuation turned into entities (so no tag, image, link, emphasis or
  table cell can be opened or closed), and @-mentions, issue references (#123, org/repo#123,
  GH-123) and bare URLs broken with a zero-width space (GitHub resolves those on the rendered text,
  after entities are decoded).
- `code_block()` for whole texts: a fenced block whose fence is longer than any backtick run in the
  text, so nothing inside can close it; GitHub renders no HTML, links or mentions in code.

Numbers go through `num()` / `duration()`, which fall back to `inline()` for anything that is not
a number. The comment is kept under GitHub's 65,536-character limit by measuring UTF-8 bytes (never
fewer than characters or UTF-16 units, however GitHub counts) and cutting whole pieces, richest
first, with a note that says what was cut.
"""

from __future__ import annotations

import math

from labtax.comment import GITHUB_COMMENT_LIMIT, MARKER
from labtax.markdown import clean, code, code_block, duration, inline, num, size

OK, WARN, FAIL, INFO = "✅", "⚠️", "❌", "ℹ️"
_RANK = {OK: 0, INFO: 0, WARN: 1, FAIL: 2}
_TITLE = {OK: "looks good", INFO: "nothing to check", WARN: "needs a look", FAIL: "needs changes"}

SAMPLE_MESSAGE_CHARS = 1500
REDUCED_MESSAGE_CHARS = 500
REJECTED_TEXT_CHARS = 800
EXAMPLE_TEXT_CHARS = 800
PREVIEW_CHARS = 100
MAX_LINT_FINDINGS = 50
MAX_REASONS = 6
NOTE_RESERVE = 800
# A fork's pull request runs the fork's own copy of generate.yml, so what its artifact says cannot be
# vouched for by the job that posts: every verdict from it carries this mark (see docs/ci.md).
NOT_VERIFIED = " _(not verified)_"
UNVERIFIED_NOTE = (
    f"> {WARN} **Values from the fork's run, not verified.** GitHub runs a fork's pull request with the "
    "fork's own workflow files, so the counts, samples and verdicts below are what that run reported: "
    "this repository's labtax escaped them but did not recompute them.\n\n"
)


def _as_int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _as_list(value) -> list:
    return value if isinstance(value, list) else []


def _worst(*statuses) -> str:
    present = [s for s in statuses if s]
    return max(present, key=lambda status: _RANK.get(status, 0)) if present else INFO


# --------------------------------------------------------------------------- verdicts


def leaf_status(stats: dict) -> str:
    requested, accepted = _as_int(stats.get("requested")), _as_int(stats.get("accepted"))
    if requested is None or accepted is None:
        return WARN
    if accepted >= requested:
        return OK
    return FAIL if accepted == 0 else WARN


def data_status(leaves: dict) -> tuple[str, str]:
    if not leaves:
        return INFO, "no changed leaves"
    requested = sum(_as_int(_as_dict(s).get("requested")) or 0 for s in leaves.values())
    accepted = sum(_as_int(_as_dict(s).get("accepted")) or 0 for s in leaves.values())
    status = _worst(*(leaf_status(_as_dict(s)) for s in leaves.values()))
    noun = "leaf" if len(leaves) == 1 else "leaves"
    return status, f"{accepted:,} of {requested:,} requested samples accepted for {len(leaves):,} {noun}"


def lint_status(lint: dict | None) -> tuple[str, str] | None:
    if lint is None:
        return None
    errors, warnings = _as_int(lint.get("errors")), _as_int(lint.get("warnings"))
    if errors is None or warnings is None:
        findings = [_as_dict(f) for f in _as_list(lint.get("findings"))]
        errors = sum(1 for f in findings if f.get("level") == "error")
        warnings = sum(1 for f in findings if f.get("level") == "warning")
    status = FAIL if errors else WARN if warnings else OK
    return status, f"{errors:,} error{'s' * (errors != 1)}, {warnings:,} warning{'s' * (warnings != 1)}"


def train_status(train: dict | None) -> tuple[str, str] | None:
    if train is None:
        return None
    verdict = train.get("verdict")
    status = OK if verdict == "learned" else FAIL if verdict == "did not learn" else WARN
    return status, inline(verdict if verdict is not None else "no verdict", 60)


# --------------------------------------------------------------------------- pieces


def render_header(summary: dict, lint: dict | None, train: dict | None, unverified: bool = False) -> str:
    leaves = _as_dict(summary.get("leaves"))
    parts = [("Data", data_status(leaves))]
    if (ls := lint_status(lint)) is not None:
        parts.append(("Lint", ls))
    if (ts := train_status(train)) is not None:
        parts.append(("Training", ts))
    skipped = [s for s in _as_list(_as_dict(summary.get("run")).get("skipped")) if isinstance(s, dict)]
    overall = _worst(*(status for _, (status, _) in parts), *([FAIL] if skipped else []))
    mark = NOT_VERIFIED if unverified else ""
    lines = [MARKER, f"## 🧪 labtax: {overall} {_TITLE[overall]}{mark}", ""]
    lines.append(" · ".join(f"**{name}:** {status} {text}{mark}" for name, (status, text) in parts))
    lines.append("")
    if unverified:
        lines.append(UNVERIFIED_NOTE.rstrip("\n"))
        lines.append("")
    run = _as_dict(summary.get("run"))
    meta = []
    if run.get("teacher") is not None or run.get("model") is not None:
        teacher = code(run.get("teacher", "?"), 60)
        meta.append(f"teacher {teacher}" + (f" ({code(run['model'], 80)})" if run.get("model") is not None else ""))
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
    if skipped:  # never narrow the selection silently: the reviewer sees what got no data, and why
        names = ", ".join(code(s.get("leaf", "?"), 120) for s in skipped[:10]) + (
            f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        )
        lines += [
            f"⚠️ **{len(skipped)} {'leaf' if len(skipped) == 1 else 'leaves'} not generated** because of lint errors (fix them, then push again): {names}",
            "",
        ]
    return "\n".join(lines) + "\n"


def rejected_summary(rejected) -> str:
    counts = {str(k): v for k, v in _as_dict(rejected).items()}
    if not counts:
        return "0" if isinstance(rejected, dict) else "–"
    total = sum(v for v in counts.values() if _as_int(v) is not None)
    ordered = sorted(counts.items(), key=lambda kv: (-(_as_int(kv[1]) or 0), kv[0]))
    shown = ", ".join(f"{inline(reason, 40)} {num(count)}" for reason, count in ordered[:MAX_REASONS])
    more = f", +{len(ordered) - MAX_REASONS} more" if len(ordered) > MAX_REASONS else ""
    return f"{total:,}: {shown}{more}"


def overview_rows(leaves: dict) -> tuple[str, list[str]]:
    head = (
        "| | Leaf | Kind | Accepted / requested | Rejected (by reason) | Teacher calls (cached) | Time |\n"
        "|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for leaf, stats in leaves.items():
        stats = _as_dict(stats)
        calls = num(stats.get("teacher_calls"))
        if stats.get("cached_calls") is not None:
            calls += f" ({num(stats.get('cached_calls'))})"
        note = f"<br><sub>{inline(stats['note'], 120)}</sub>" if stats.get("note") else ""
        rows.append(
            f"| {leaf_status(stats)} | {code(leaf)}{note} | {inline(stats.get('kind', '–'), 20)} "
            f"| {num(stats.get('accepted'))} / {num(stats.get('requested'))} | {rejected_summary(stats.get('rejected'))} "
            f"| {calls} | {duration(stats.get('seconds'))} |\n"
        )
    return head, rows


def render_messages(messages, limit: int) -> str:
    out = []
    shown = [m for m in _as_list(messages) if isinstance(m, dict) and m.get("role") != "system"]
    for message in shown:
        role = message.get("role")
        label = {"user": "Question", "assistant": "Answer"}.get(str(role), inline(role, 20))
        out.append(f"**{label}**\n\n{code_block(message.get('content', ''), limit)}")
    return "\n".join(out) if out else "_(no messages)_\n"


def preview(messages) -> str:
    users = [m for m in _as_list(messages) if isinstance(m, dict) and m.get("role") == "user"]
    return inline(users[-1].get("content", "") if users else "(no question)", PREVIEW_CHARS)


def render_judge(judge) -> str:
    judge = _as_dict(judge)
    scores = _as_dict(judge.get("scores"))
    reasons = _as_dict(judge.get("reasons"))
    if not scores and not reasons:
        return ""
    parts = []
    for name in list(dict.fromkeys([*scores, *reasons]))[:6]:
        text = inline(name, 30)
        if name in scores:
            text += f" {num(scores[name], 2) if isinstance(scores[name], float) else num(scores[name])}"
        reason = clean(reasons.get(name)).strip()
        if reason and reason != clean(scores.get(name)).strip():  # a reason that only repeats the score says nothing
            text += f" ({inline(reason, 160)})"
        parts.append(text)
    return "<sub>Judge: " + " · ".join(parts) + "</sub>\n"


def render_sample(number: int, sample: dict, limit: int) -> str:
    return (
        f"<details><summary>Sample {number}: {preview(sample.get('messages'))}</summary>\n\n"
        f"{render_messages(sample.get('messages'), limit)}\n{render_judge(sample.get('judge'))}\n</details>\n\n"
    )


def render_candidate(candidate, limit: int) -> str:
    if isinstance(candidate, dict) and isinstance(candidate.get("messages"), list):
        return render_messages(candidate["messages"], limit)
    if isinstance(candidate, dict) and candidate and all(isinstance(v, str) for v in candidate.values()):
        return "\n".join(
            f"**{inline(key.capitalize(), 40)}**\n\n{code_block(value, limit)}"
            for key, value in list(candidate.items())[:4]
        )
    if candidate in (None, "", {}, []):
        return "_(no candidate text)_\n"
    return code_block(candidate, limit)


def render_rejected(record: dict, limit: int) -> str:
    reason = inline(record.get("reason", "unknown"), 60)
    stage = f" at {inline(record['stage'], 40)}" if record.get("stage") else ""
    candidate = record.get("candidate")
    if isinstance(candidate, dict) and "messages" in candidate:
        title = preview(candidate.get("messages"))
    elif isinstance(candidate, dict) and "question" in candidate:
        title = inline(candidate["question"], PREVIEW_CHARS)
    else:
        title = inline(candidate, PREVIEW_CHARS)
    detail = f"<sub>{inline(record['detail'], 300)}</sub>\n\n" if record.get("detail") not in (None, "", {}, []) else ""
    return (
        f"<details><summary>{FAIL} {reason}{stage}: {title}</summary>\n\n"
        f"{detail}{render_candidate(candidate, limit)}\n</details>\n\n"
    )


def render_leaf(leaf: str, stats: dict, samples: list, rejected: list, message_chars: int) -> str:
    stats = _as_dict(stats)
    lines = [f"### {leaf_status(stats)} {code(leaf)}\n\n"]
    if stats.get("note"):
        lines.append(f"> {inline(stats['note'], 300)}\n\n")
    if samples:
        lines.append(f"**Accepted samples** ({len(samples)} of {num(stats.get('accepted'))})\n\n")
        lines += [render_sample(i, s, message_chars) for i, s in enumerate(samples, 1)]
    else:
        lines.append("_No accepted samples to show._\n")
    if rejected:
        total = sum(v for v in _as_dict(stats.get("rejected")).values() if _as_int(v) is not None)
        lines.append(f"\n**Rejected** ({len(rejected)} of {max(total, len(rejected)):,})\n\n")
        lines += [render_rejected(r, min(message_chars, REJECTED_TEXT_CHARS)) for r in rejected]
    return "".join(lines) + "\n"


def render_lint(lint: dict, max_findings: int, mark: str = "") -> str:
    status, text = lint_status(lint) or (INFO, "")
    files = _as_int(lint.get("files"))
    where = f" in {files:,} file{'s' * (files != 1)}" if files is not None else ""
    out = [f"### Lint: {status} {text}{where}{mark}\n\n"]
    findings = [_as_dict(f) for f in _as_list(lint.get("findings"))]
    findings.sort(key=lambda f: (f.get("level") != "error", str(f.get("path")), _as_int(f.get("line")) or 0))
    if findings and max_findings > 0:
        out.append("| Level | Where | Rule | Message |\n|---|---|---|---|\n")
        for f in findings[:max_findings]:
            icon = FAIL if f.get("level") == "error" else WARN
            where = code(f.get("path", "?")) + f":{num(f.get('line'))}:{num(f.get('col'))}"
            hint = f"<br><sub>{inline(f['hint'], 200)}</sub>" if f.get("hint") else ""
            out.append(
                f"| {icon} {inline(f.get('level', '?'), 10)} | {where} | {inline(f.get('rule_id', '?'), 20)} | {inline(f.get('message', ''), 300)}{hint} |\n"
            )
    if len(findings) > max_findings:
        out.append(f"\n_… and {len(findings) - max_findings:,} more findings not shown._\n")
    return "".join(out) + "\n"


def render_train(train: dict, examples: int, mark: str = "") -> str:
    status, verdict = train_status(train) or (INFO, "")
    out = [f"### Training smoke test: {status} {verdict}{mark}\n\n"]
    if train.get("verdict_line"):
        out.append(f"{inline(train['verdict_line'], 400)}\n\n")
    phases = [_as_dict(p) for p in _as_list(train.get("phases"))]
    if phases:
        out.append("| Phase | Steps | Time | Train loss (first → last) | Verdict |\n|---|---|---|---|---|\n")
        for p in phases:
            phase_verdict = train_status({"verdict": p["verdict"]}) if "verdict" in p else None
            out.append(
                f"| {inline(p.get('name', '?'), 40)} | {num(p.get('steps'))} | {duration(p.get('seconds'))} "
                f"| {num(p.get('train_loss_first'), 3)} → {num(p.get('train_loss_last'), 3)} "
                f"| {' '.join(phase_verdict) if phase_verdict else '–'} |\n"
            )
        heldout = [
            (p.get("name", "?"), leaf, _as_dict(v)) for p in phases for leaf, v in _as_dict(p.get("heldout")).items()
        ]
        if heldout:
            out.append("\n| Held-out leaf | Phase | Loss before | Loss after | Change |\n|---|---|---|---|---|\n")
            for phase, leaf, v in heldout[:40]:
                before, after = v.get("loss_before"), v.get("loss_after")
                change = "–"
                if (
                    all(
                        isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                        for x in (before, after)
                    )
                    and before
                ):
                    change = f"{(after - before) / before:+.1%}"
                role = f" ({inline(v['role'], 20)})" if v.get("role") else ""
                out.append(
                    f"| {code(leaf)}{role} | {inline(phase, 40)} | {num(before, 3)} | {num(after, 3)} | {change} |\n"
                )
            if len(heldout) > 40:
                out.append(f"\n_… and {len(heldout) - 40:,} more held-out rows not shown._\n")
        out.append("\n")
    for ex in [_as_dict(e) for e in _as_list(train.get("examples"))][:examples]:
        out.append(
            f"<details><summary>Before / after: {inline(ex.get('question', ''), PREVIEW_CHARS)}</summary>\n\n"
            f"Leaf {code(ex.get('leaf', '?'))}\n\n**Question**\n\n{code_block(ex.get('question', ''), EXAMPLE_TEXT_CHARS)}\n"
            + (
                f"**Reference answer (held out)**\n\n{code_block(ex['reference'], EXAMPLE_TEXT_CHARS)}\n"
                if ex.get("reference")
                else ""
            )
            + f"**Before training**\n\n{code_block(ex.get('before', ''), EXAMPLE_TEXT_CHARS)}\n"
            f"**After training**\n\n{code_block(ex.get('after', ''), EXAMPLE_TEXT_CHARS)}\n</details>\n\n"
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
    header = render_header(summary, lint, train, unverified)
    mark = NOT_VERIFIED if unverified else ""
    foot = f"\n<sub>{inline(footer, 200)}</sub>\n" if footer else ""
    budget = _Budget(max_chars - size(header) - size(foot) - NOTE_RESERVE)
    cut: list[str] = []

    training = ""
    if train is not None:
        variants = [
            render_train(train, 3, mark),
            render_train(train, 1, mark),
            render_train({**train, "examples": []}, 0, mark),
            render_train({"verdict": train.get("verdict"), "verdict_line": train.get("verdict_line")}, 0, mark),
        ]
        index, training = _first_fitting(variants, budget, max_chars // 5)
        if index:
            cut.append("training details" if index < len(variants) else "the training section")
    lint_text = ""
    if lint is not None:
        total = len(_as_list(lint.get("findings")))
        limits = (MAX_LINT_FINDINGS, 20, 10, 5, 0)
        index, lint_text = _first_fitting([render_lint(lint, n, mark) for n in limits], budget, max_chars // 4)
        if index == len(limits):
            cut.append("the lint section")
        elif index and total > limits[index]:
            cut.append(f"{total - limits[index]:,} lint findings")

    head, rows = overview_rows(leaves)
    table_budget = _Budget(max(budget.left, 0) // 2)
    table = ""
    if rows:
        more_row = "| | … | | | | | |\n"
        if table_budget.take(head) and table_budget.left >= size(more_row):
            table_budget.left -= size(more_row) + 40
            shown = 0
            for row in rows:
                if not table_budget.take(row):
                    break
                shown += 1
            table = head + "".join(rows[:shown])
            if shown < len(rows):
                table += f"| | _{len(rows) - shown:,} more leaves not shown_ | | | | | |\n"
                cut.append(f"{len(rows) - shown:,} rows of the leaf table")
        budget.take(table)
        table += "\n"

    sections = []
    reduced = dropped = 0
    all_rejected = inputs.rejected(leaves, rejected_per_leaf) if rejected_per_leaf > 0 else {}
    for _number, (leaf, stats) in enumerate(leaves.items()):
        if dropped:
            dropped += 1
            continue
        samples = inputs.samples(leaf, samples_per_leaf) if samples_per_leaf > 0 else []
        rejected = all_rejected.get(leaf, [])
        full = render_leaf(leaf, stats, samples, rejected, SAMPLE_MESSAGE_CHARS)
        if budget.take(full):
            sections.append(full)
            continue
        small = render_leaf(leaf, stats, samples[:1], rejected[:1], REDUCED_MESSAGE_CHARS)
        if budget.take(small):
            sections.append(small)
            reduced += 1
            continue
        dropped = 1
    if reduced:
        cut.append(f"samples of {reduced:,} leaves (fewer and shorter shown)")
    if dropped:
        cut.append(f"sample details of {dropped:,} of {len(leaves):,} leaves")

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
