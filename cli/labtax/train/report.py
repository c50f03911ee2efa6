"""train_report.json and train_report.md: the numbers, the verdict, and a Markdown section for the PR.

Model answers and leaf paths are untrusted text; they reach the Markdown only through labtax.markdown's
escaping doors (`inline`, `code`, `code_block`), the one place escaping lives.
"""

from __future__ import annotations

from pathlib import Path

from labtax.fileio import write_json_atomic, write_text_atomic
from labtax.markdown import code, code_block, inline
from labtax.records.layout import Layout
from labtax.wording import counted

EXAMPLE_CHARS = 600


def _num(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _pct(before, after) -> str:
    if before is None or after is None or not before:
        return "–"
    return f"{(after - before) / before:+.1%}"


def markdown(report: dict) -> str:
    out = [
        f"### Training smoke test: {inline(report['verdict'], 60)}\n\n",
        f"**Verdict:** {inline(report['verdict_line'], 600)}\n\n",
    ]
    settings = report.get("settings", {})
    threads = settings.get("threads")
    threads = counted(threads, "CPU thread") if isinstance(threads, int) else f"{threads} CPU threads"
    out.append(
        f"LoRA r={settings.get('lora_r')} on {inline(report.get('model', '?'), 80)}, batch {settings.get('batch_size')}, "
        f"lr {settings.get('lr')}, {threads}, {report.get('seconds', 0):.0f}s in all.\n\n"
    )
    out.append(
        "| Phase | Samples (+replay) | Steps | Time | Train loss first → last | Probe batch loss before → after | Verdict |\n"
    )
    out.append("|---|---|---|---|---|---|---|\n")
    for p in report["phases"]:
        out.append(
            f"| {inline(p['name'], 40)} | {p['samples']} (+{p['replay']}) | {p['steps']} | {p['seconds']:.0f}s "
            f"| {_num(p['train_loss_first'])} → {_num(p['train_loss_last'])} | {_num(p['probe_loss_before'])} → {_num(p['probe_loss_after'])} "
            f"| {inline(p['verdict'], 40)} |\n"
        )
    rows = [(p["name"], leaf, v) for p in report["phases"] for leaf, v in p["heldout"].items()]
    if rows:
        out.append(
            "\n| Held-out leaf | Phase | Role | Loss before → after | Perplexity before → after | Change |\n|---|---|---|---|---|---|\n"
        )
        for phase, leaf, v in rows:
            out.append(
                f"| {code(leaf)} | {inline(phase, 40)} | {inline(v.get('role', ''), 20)} | {_num(v['loss_before'])} → {_num(v['loss_after'])} "
                f"| {_num(v['ppl_before'], 1)} → {_num(v['ppl_after'], 1)} | {_pct(v['loss_before'], v['loss_after'])} |\n"
            )
    for ex in report.get("examples", []):
        out.append(
            f"\n<details><summary>Before / after: {inline(ex['question'], 100)}</summary>\n\n"
            f"Leaf {code(ex['leaf'])}\n\n**Question**\n\n{code_block(ex['question'], EXAMPLE_CHARS)}\n"
            f"**Reference answer (held out)**\n\n{code_block(ex.get('reference', ''), EXAMPLE_CHARS)}\n"
            f"**Before training**\n\n{code_block(ex['before'], EXAMPLE_CHARS)}\n"
            f"**After training**\n\n{code_block(ex['after'], EXAMPLE_CHARS)}\n</details>\n"
        )
    return "".join(out) + "\n"


def write(report: dict, output: Path) -> tuple[Path, Path]:
    report["markdown"] = markdown(report)
    json_path, md_path = Layout(output).train_report, Layout(output).train_markdown
    write_text_atomic(md_path, report["markdown"])
    write_json_atomic(json_path, report)
    return json_path, md_path
