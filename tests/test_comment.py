"""`labtax comment`: rendering, escaping of hostile text, the size limit, and posting to a fake GitHub.

The fake GitHub is a real HTTP server on 127.0.0.1 that keeps comments per pull request, pages
them with Link headers like GitHub does and checks the token; the CLI runs as a subprocess.
The produced Markdown is checked with a real CommonMark parser (markdown-it-py), not only by
string matching, so "cannot break out" means: the parser sees no image, no link, no foreign HTML.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from labtax.comment import GITHUB_COMMENT_LIMIT, MARKER
from labtax.comment.render import render_rejected
from labtax.comment.verdicts import fix_plurals, short_names
from labtax.markdown import code_block, inline, quote_block, text_block

from .conftest import run_labtax

TOKEN = "ghp_TESTSECRET0123456789abcdefABCDEF"
REPO_NAME = "octo/taxonomy"
ASTRO = "knowledge/science/astronomy/pulsars/qna.yaml"
POEMS = "compositional_skills/writing/poems/haiku/qna.yaml"

# --------------------------------------------------------------------------- realistic inputs


def make_sample(leaf: str, kind: str, number: int, question: str, answer: str) -> dict:
    return {
        "id": f"{leaf.split('/')[-2]}-{number:04d}",
        "messages": [
            {"role": "system", "content": "You are a careful assistant. Answer from the document."},
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ],
        "leaf": leaf,
        "kind": kind,
        "provenance": {"seed_example": number % 5, "teacher": "embedded", "prompt_version": "knowledge-qa@1"},
        "judge": {
            "scores": {"faithfulness": 3, "relevance": 2},
            "reasons": {"faithfulness": "supported by the document"},
        },
    }


def write_run(root: Path, leaves: dict, rejected: list | None = None, *, requested: dict | None = None) -> Path:
    """generated/summary.json, generated/<leaf>/samples.jsonl and generated/review/rejected.jsonl, per the contracts."""
    generated = root / "generated"
    rejected = rejected or []
    summary = {
        "run": {
            "teacher": "embedded",
            "model": "SmolLM2-135M-Instruct",
            "commit": "3f2a9c1d0e4b5a6978877665544332211",
            "started": "2025-11-25T12:00:00+00:00",
            "seconds": 95.4,
            "num_samples": 5,
            "pipeline_versions": ["compositional@1", "knowledge@1"],
        },
        "leaves": {},
        "totals": {},
    }
    for leaf, samples in leaves.items():
        folder = generated / leaf.removesuffix("qna.yaml")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples), encoding="utf-8")
        reasons: dict[str, int] = {}
        for r in rejected:
            if r["leaf"] == leaf:
                reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
        summary["leaves"][leaf] = {
            "kind": samples[0]["kind"] if samples else "knowledge",
            "requested": (requested or {}).get(leaf, 5),
            "accepted": len(samples),
            "rejected": reasons,
            "teacher_calls": 3 * len(samples) + len(reasons),
            "cached_calls": 1,
            "tokens": 812 * len(samples),
            "seconds": 12.5 * max(len(samples), 1),
            "note": "",
        }
    summary["totals"] = {
        "requested": sum(v["requested"] for v in summary["leaves"].values()),
        "accepted": sum(v["accepted"] for v in summary["leaves"].values()),
    }
    (generated / "review").mkdir(parents=True, exist_ok=True)
    (generated / "review" / "rejected.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rejected), encoding="utf-8"
    )
    path = generated / "summary.json"
    path.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return path


def normal_run(root: Path, accepted: int = 4) -> Path:
    astro = [
        make_sample(
            ASTRO,
            "knowledge",
            i,
            f"What makes pulsar number {i} spin so fast?",
            f"Pulsar {i} keeps the angular momentum of its collapsed parent star.",
        )
        for i in range(accepted)
    ]
    poems = [
        make_sample(
            POEMS,
            "compositional",
            i,
            f"Write a haiku about rain, take {i}.",
            "Soft rain on the roof\nthe kettle begins to sing\nthe cat does not move",
        )
        for i in range(5)
    ]
    rejected = [
        {
            "leaf": ASTRO,
            "stage": "judge",
            "reason": "unfaithful",
            "detail": "faithfulness 1 < 2",
            "candidate": {
                "messages": [
                    {"role": "user", "content": "Are pulsars made of cheese?"},
                    {"role": "assistant", "content": "Yes, mostly cheddar."},
                ]
            },
        },
        {
            "leaf": ASTRO,
            "stage": "dedup",
            "reason": "duplicate",
            "detail": "ROUGE-L 0.97 with: What is a pulsar?",
            "candidate": {"question": "What is a pulsar, really?", "answer": "A spinning neutron star."},
            "sample_index": 3,
        },
    ]
    return write_run(root, {ASTRO: astro, POEMS: poems}, rejected)


def train_report(path: Path, verdict: str = "learned") -> Path:
    report = {
        "verdict": verdict,
        "verdict_line": "held-out loss fell on 2 of 2 changed leaves after phase knowledge",
        "phases": [
            {
                "name": "knowledge",
                "samples": 4,
                "replay": 0,
                "steps": 40,
                "seconds": 61.0,
                "train_loss_first": 2.91,
                "train_loss_last": 1.12,
                "verdict": "learned",
                "heldout": {
                    ASTRO: {
                        "loss_before": 2.8,
                        "loss_after": 1.4,
                        "ppl_before": 16.4,
                        "ppl_after": 4.1,
                        "role": "trained",
                    }
                },
            },
            {
                "name": "skills",
                "samples": 5,
                "replay": 2,
                "steps": 30,
                "seconds": 44.0,
                "train_loss_first": 2.5,
                "train_loss_last": 1.3,
                "verdict": "did not learn",
                "heldout": {
                    POEMS: {"loss_before": 2.6, "loss_after": 1.9, "role": "trained"},
                    ASTRO: {"loss_before": 1.4, "loss_after": 1.45, "role": "replayed"},
                },
            },
        ],
        "examples": [
            {
                "leaf": ASTRO,
                "question": "What is a pulsar?",
                "reference": "A rotating, magnetised neutron star.",
                "before": "A pulsar is a planet.",
                "after": "A rotating neutron star.",
            }
        ],
        "markdown": "<img src=https://evil.example/x.png> raw markdown must not be pasted",
    }
    path.write_text(json.dumps(report), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- Markdown structure checks

ALLOWED_TAGS = re.compile(r"</?(details|summary|sub|code)>|<br>|<!-- labtax-bot -->")


def parse(markdown: str):
    return MarkdownIt("commonmark").enable("table").parse(markdown)


def walk(tokens):
    for token in tokens:
        yield token
        if token.children:
            yield from walk(token.children)


def assert_safe_markdown(markdown: str) -> list:
    """The parser sees only our own HTML tags, no image or link, no live @-mention or URL in text."""
    tokens = list(walk(parse(markdown)))
    for token in tokens:
        assert token.type not in ("image", "link_open", "autolink_open"), token
        if token.type in ("html_block", "html_inline"):
            leftover = ALLOWED_TAGS.sub("", token.content)
            assert "<" not in leftover, f"foreign HTML in {token.content!r}"
        if token.type == "text":
            assert not re.search(r"@(?!\u200b)\w", token.content), f"live mention in {token.content!r}"
            assert "://" not in token.content and "www." not in token.content.lower(), token.content
            # GitHub links #123, owner/repo#123 and GH-123 in rendered text (not in code): none may survive
            assert not re.search(r"#\d|(?i:gh)-\d", token.content), f"live issue reference in {token.content!r}"
    blocks = " ".join(t.content for t in tokens if t.type in ("html_block", "html_inline"))
    assert blocks.count("<details>") == blocks.count("</details>")
    assert blocks.count("<summary>") == blocks.count("</summary>")
    return tokens


def assert_cells_intact(markdown: str) -> None:
    """Every table line has exactly its header's pipes: GFM drops extra cells silently, so count raw pipes."""
    lines = markdown.splitlines()
    for number, line in enumerate(lines):
        if re.fullmatch(r"(\|---)+\|", line):
            columns = line.count("|")
            for row in lines[number + 1 :]:
                if not row.startswith("|"):
                    break
                assert row.count("|") == columns, row


def shown_texts(tokens) -> list[str]:
    """Every whole text the comment shows: code blocks' contents and blockquotes' text (line breaks kept)."""
    texts, depth, parts = [], 0, []
    for token in tokens:
        if token.type == "fence":
            texts.append(token.content)
        elif token.type == "blockquote_open":
            depth += 1
        elif token.type == "blockquote_close":
            depth -= 1
            if depth == 0:
                texts.append("\n\n".join(parts) + "\n")
                parts = []
        elif token.type == "inline" and depth:
            parts.append(
                "".join(
                    "\n" if c.type in ("softbreak", "hardbreak") else c.content
                    for c in token.children or []
                    if c.type in ("text", "softbreak", "hardbreak", "code_inline", "html_inline")
                )
            )
    return texts


def table_rows(tokens) -> list[int]:
    """Cells per row of every table the parser found."""
    rows, cells = [], 0
    for token in tokens:
        if token.type == "tr_open":
            cells = 0
        elif token.type in ("td_open", "th_open"):
            cells += 1
        elif token.type == "tr_close":
            rows.append(cells)
    return rows


# --------------------------------------------------------------------------- rendering


def test_renders_verdicts_tables_samples_lint_and_training(tmp_path):
    summary = normal_run(tmp_path, accepted=4)
    lint = tmp_path / "lint.json"
    lint.write_text(
        json.dumps(
            {
                "files": 2,
                "errors": 1,
                "warnings": 1,
                "findings": [
                    {
                        "path": ASTRO,
                        "line": 7,
                        "col": 5,
                        "rule_id": "LT001",
                        "level": "error",
                        "message": "missing required field 'created_by'",
                        "hint": "add 'created_by:'",
                    },
                    {
                        "path": POEMS,
                        "line": 3,
                        "col": 1,
                        "rule_id": "LT009",
                        "level": "warning",
                        "message": "question ends without '?'",
                        "hint": "",
                    },
                ],
            }
        ),
        encoding="utf-8",
    )
    proc = run_labtax(
        "comment",
        "--summary",
        str(summary),
        "--lint-report",
        str(lint),
        "--train-report",
        str(train_report(tmp_path / "train_report.json")),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    md = proc.stdout
    assert md.startswith(MARKER)
    assert "## 🧪 labtax: ❌ needs changes" in md.splitlines()[1]  # a lint error makes the verdict fail
    assert "**Lint:** ❌ 1 error, 1 warning" in md and "**Training:** ✅ learned" in md
    assert "9 of 10 requested samples accepted for 2 leaves" in md
    tokens = assert_safe_markdown(md)
    assert set(table_rows(tokens)) == {4, 5}  # leaf table, phase/held-out tables (lint findings are a list)
    assert_cells_intact(md)
    # short leaf names in the table (no run-wide wall clock per leaf), the full path under it and in the section
    assert (
        "| ⚠️ <code>pulsars</code><br><sub>knowledge</sub> | 4 / 5 | 2<br><sub>duplicate 1<br>unfaithful 1</sub> "
        "| 14<br><sub>+1 cached</sub> |" in md
    )
    # All 5 accepted, but with no calibration in the summary: accepted on the judge's score alone, never ✅.
    assert "| ⚠️ <code>haiku</code><br><sub>compositional</sub> | 5 / 5 | 0 |" in md
    assert "accepted on the judge's score alone" in md
    assert "- <code>pulsars</code>: <code>knowledge/science/astronomy/pulsars/qna.yaml</code>" in md
    assert (
        "### ⚠️ <code>pulsars</code>\n\n<sub><code>knowledge/science/astronomy/pulsars/qna.yaml</code> · knowledge" in md
    )
    assert "| Leaf | Accepted | Rejected | Teacher calls |" in md and "50.0 s" not in md
    # what failed and what the contributor can do, named in the header
    assert "- ❌ **Lint**: 1 error: fix it" in md
    assert (
        "- ⚠️ **Data**, <code>pulsars</code>: 4 of 5 requested samples accepted (rejected: duplicate 1, unfaithful 1)."
        in md
    )
    # 3 samples per leaf by default, each in its own <details> with the question as summary
    assert md.count("<details><summary>Sample ") == 6
    assert "Sample 1: What makes pulsar number 0 spin so fast?" in md and "Sample 4:" not in md
    fences = shown_texts(tokens)
    assert "Pulsar 2 keeps the angular momentum of its collapsed parent star.\n" in fences
    assert "Soft rain on the roof\nthe kettle begins to sing\nthe cat does not move\n" in fences  # lines kept
    assert not [t for t in tokens if t.type == "fence"]  # prose wraps in quotes; no code block clips it
    assert "You are a careful assistant" not in md  # the system prompt is ours, not worth the space
    assert "❌ unfaithful at judge: Are pulsars made of cheese?" in md and "faithfulness 1 &lt; 2" in md
    assert "❌ duplicate at dedup: What is a pulsar, really?" in md and "**Question**" in md
    assert (
        "- ❌ error <code>knowledge/science/astronomy/pulsars/qna.yaml</code>:7:5 LT001: missing required field" in md
    )
    assert (
        "### Training smoke test: ✅ learned" in md
        and "| knowledge | 40 | 1 min 01 s | 2.910 → 1.120 | ✅ learned |" in md
    )
    assert "| skills | 30 | 44.0 s | 2.500 → 1.300 | ❌ did not learn |" in md
    assert "| <code>pulsars</code><br><sub>replayed</sub> | skills | 1.400 | 1.450 | +3.6% |" in md
    assert "pipelines" not in md and "prompts compositional@&#8203;1, knowledge@&#8203;1" in md
    assert (
        "-50.0%" in md and "A rotating neutron star.\n" in fences and "A rotating, magnetised neutron star.\n" in fences
    )
    assert "raw markdown must not be pasted" not in md
    assert "Cut to fit" not in md


def test_unverified_marks_every_verdict_from_a_forks_run(tmp_path):
    """A fork's run reports what its own copy of the workflow wrote: the bot must not vouch for it."""
    summary = normal_run(tmp_path, accepted=5)
    train = train_report(tmp_path / "train_report.json", verdict="learned")
    lint = tmp_path / "lint.json"
    lint.write_text(json.dumps({"files": 2, "errors": 0, "warnings": 0, "findings": []}))
    args = ("comment", "--summary", str(summary), "--train-report", str(train), "--lint-report", str(lint))
    trusted = run_labtax(*args, cwd=tmp_path)
    assert trusted.returncode == 0, trusted.stderr
    assert "not verified" not in trusted.stdout and "**Training:** ✅ learned ·" not in trusted.stdout
    proc = run_labtax(*args, "--unverified", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    md = proc.stdout
    assert md.splitlines()[1].endswith("_(not verified)_")
    verdicts = md.splitlines()[3]
    assert verdicts.count("_(not verified)_") == 3 and "**Training:** ✅ learned _(not verified)_" in verdicts
    assert "Values from the fork's run, not verified." in md
    assert (
        "### Training smoke test: ✅ learned _(not verified)_" in md
        and "### Lint: ✅ 0 errors, 0 warnings in 2 files _(not verified)_" in md
    )
    tokens = assert_safe_markdown(md)
    assert any(t.type == "blockquote_open" for t in tokens)
    small = run_labtax(*args, "--unverified", "--max-chars", "2000", cwd=tmp_path)  # cut to the bone, still marked
    assert small.returncode == 0 and "Values from the fork's run, not verified." in small.stdout


def test_samples_option_and_missing_sample_files_are_tolerated(tmp_path):
    summary = normal_run(tmp_path)
    (tmp_path / "generated" / POEMS.removesuffix("qna.yaml") / "samples.jsonl").unlink()
    (tmp_path / "generated" / "review" / "rejected.jsonl").unlink()
    with open(tmp_path / "generated" / ASTRO.removesuffix("qna.yaml") / "samples.jsonl", "a") as handle:
        handle.write("{not json\n")
    proc = run_labtax(
        "comment", "--summary", str(summary), "--samples", "5", "--output", str(tmp_path / "out.md"), cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    md = (tmp_path / "out.md").read_text(encoding="utf-8")
    assert md.count("<details><summary>Sample ") == 4  # all 4 astronomy samples, the damaged line skipped
    assert "_No accepted samples to show._" in md and "**Rejected**" not in md


def test_missing_or_broken_summary_is_a_clear_error(tmp_path):
    proc = run_labtax("comment", "--summary", str(tmp_path / "nope.json"), cwd=tmp_path)
    assert proc.returncode == 2 and "summary not found" in proc.stderr and "labtax generate" in proc.stderr
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    proc = run_labtax("comment", "--summary", str(tmp_path / "bad.json"), cwd=tmp_path)
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr and "Traceback" not in proc.stderr


def test_real_lint_report_is_rendered(tmp_path):
    leaf = tmp_path / "compositional_skills" / "writing" / "poems" / "qna.yaml"
    leaf.parent.mkdir(parents=True)
    leaf.write_text(
        'version: 3\ntask_description: "poems"\nseed_examples:\n  - question: "<img src=x> @org/team |"\n    answer: "ok"\n',
        encoding="utf-8",
    )
    lint_proc = run_labtax("lint", "--format", "json", "--output", str(tmp_path / "lint.json"), cwd=tmp_path)
    assert lint_proc.returncode == 1, lint_proc.stderr
    lint = json.loads((tmp_path / "lint.json").read_text())
    summary = normal_run(tmp_path / "run")
    proc = run_labtax("comment", "--summary", str(summary), "--lint-report", str(tmp_path / "lint.json"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"### Lint: ❌ {lint['errors']} error" in proc.stdout
    assert (
        proc.stdout.count("- ❌ error <code>compositional&#95;skills/writing/poems/qna.yaml</code>") == lint["errors"]
    )
    assert_safe_markdown(proc.stdout)


# --------------------------------------------------------------------------- hostile text

HOSTILE_QUESTIONS = [
    "</details></summary><script>alert(1)</script> What is a pulsar?",
    '<img src="https://evil.example/track.png" onerror=alert(1)> How far is Vela?',
    "Ask @org/team and @someone about it | col | col2 || ![x](https://evil.example/x.png)",
    "Backticks ``` and ```` and `inline` and ~~~ tildes, [link](https://evil.example) www.evil.example",
    "Fixes #12 and octo/other#34; <!-- hidden --> &amp; \u202eevil\u202c **bold** _it_ $x^2$",
]


def hostile_run(root: Path) -> Path:
    leaf = "knowledge/<img src=x>|@org/team`/qna.yaml"
    big = "A" * 40_000 + "\n````\n</details>\n" + "B" * 60_000  # a 100 KB answer with a fence and a closing tag inside
    samples = [
        make_sample(leaf, "knowledge", i, q, big if i == 0 else f"{q} ... answer {i} @org/team </details>")
        for i, q in enumerate(HOSTILE_QUESTIONS)
    ]
    rejected = [
        {
            "leaf": leaf,
            "stage": "judge",
            "reason": "bad|reason<img src=x>",
            "detail": "@org/team </details>",
            "candidate": {"question": "</details> @org/team", "answer": "`" * 10},
        }
    ]
    path = write_run(root, {leaf: samples}, rejected)
    summary = json.loads(path.read_text())
    summary["leaves"][leaf]["note"] = "</details> <img src=x> @org/team | note"
    summary["run"]["model"] = "<img src=x>|@org/team"
    path.write_text(json.dumps(summary))
    return path


def test_hostile_text_cannot_break_out(tmp_path):
    summary = hostile_run(tmp_path)
    lint = tmp_path / "lint.json"
    lint.write_text(
        json.dumps(
            {
                "files": 1,
                "errors": 1,
                "warnings": 0,
                "findings": [
                    {
                        "path": "knowledge/<img src=x>|@org/team`/qna.yaml",
                        "line": 2,
                        "col": 3,
                        "rule_id": "LT|1",
                        "level": "error",
                        "message": "question '</details> @org/team | <img src=x>' too long",
                        "hint": "![x](https://evil.example)",
                    }
                ],
            }
        )
    )
    train = tmp_path / "train.json"
    train.write_text(
        json.dumps(
            {
                "verdict": "<b>learned</b>",
                "verdict_line": "@org/team </details>",
                "phases": [
                    {
                        "name": "k|n",
                        "steps": "<img>",
                        "seconds": 1,
                        "heldout": {"<img src=x>": {"loss_before": 2, "loss_after": 1}},
                    }
                ],
                "examples": [{"leaf": "x", "question": "</details>@org", "before": "```", "after": "<img src=x>"}],
            }
        )
    )
    proc = run_labtax(
        "comment",
        "--summary",
        str(summary),
        "--samples",
        "5",
        "--lint-report",
        str(lint),
        "--train-report",
        str(train),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    md = proc.stdout
    tokens = assert_safe_markdown(md)
    # every table row keeps its column count although cells held pipes, and the hostile path stays in its cell
    assert set(table_rows(tokens)) <= {4, 5} and table_rows(tokens)
    assert_cells_intact(md)
    cells = [t.content for t in tokens if t.type == "inline"]
    assert "| ⚠️ <code>team&#96;</code><br><sub>knowledge</sub> | 5 / 5 |" in md  # its last folder, escaped
    assert any("<code>knowledge/&lt;img src&#61;x&gt;&#124;@&#8203;org/team&#96;/qna.yaml</code>" in c for c in cells)
    # each sample is one <details> with 2 texts, the rejected candidate one with 2, the training example 3;
    # prose is quoted (escaped line by line), code-like text fenced with a fence nothing inside can close
    texts = shown_texts(tokens)
    assert len(texts) == 5 * 2 + 2 + 3 + 1  # and the leaf's note
    fences = [t for t in tokens if t.type == "fence"]
    assert fences
    for fence in fences:
        longest = max((len(run) for run in re.findall(r"`+", fence.content)), default=0)
        assert len(fence.markup) > longest
    assert md.count("<details>") == 5 + 1 + 1 + 1  # samples, rejected, training example, full leaf paths
    # the texts are shown literally (mentions, links and references only broken by a zero-width space), not interpreted
    literal = [t.replace("\u200b", "") for t in texts]
    for q in HOSTILE_QUESTIONS:
        assert q.replace("\u202e", "\ufffd").replace("\u202c", "\ufffd") + "\n" in literal
    # the 100 KB answer is capped and says so
    assert any(f.content.startswith("A" * 1500 + "\n") for f in fences)
    assert "98,517 more characters not shown" in md
    assert len(md.encode()) < 40_000
    # raw-text checks on top of the parser's view
    outside = re.sub(r"(?ms)^(`{3,})text\n.*?^\1\n", "", md)
    assert "<img" not in outside and "<script" not in outside and "](http" not in outside
    assert "@org" not in outside and "@&#8203;org/team" in outside
    assert "&#35;&#8203;12" in outside and "octo/other&#35;&#8203;34" in outside
    assert "\u202e" not in md


def test_gh_issue_references_are_inert_like_hash_references(tmp_path):
    """GH-123 is GitHub's other issue-reference form: outside code it must not link or cross-reference."""
    text = "Fixes GH-123 (see gh-7, xGH-8 and GH-42); also #5 and octo/other#6, but not GH-x or GH 9"
    summary = normal_run(tmp_path)
    data = json.loads(summary.read_text())
    data["leaves"][ASTRO]["note"] = text
    data["run"]["model"] = "GH-77"
    summary.write_text(json.dumps(data))
    with open(tmp_path / "generated" / "review" / "rejected.jsonl", "a") as handle:
        handle.write(
            json.dumps(
                {
                    "leaf": ASTRO,
                    "stage": "judge",
                    "reason": "GH-1",
                    "detail": text,
                    "candidate": {"question": text, "answer": "GH-2 inside code stays as written"},
                }
            )
            + "\n"
        )
    proc = run_labtax("comment", "--summary", str(summary), "--rejected", "5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    tokens = assert_safe_markdown(proc.stdout)
    texts = " ".join(t.content for t in tokens if t.type == "text")
    assert "Fixes GH-\u200b123 (see gh-\u200b7, xGH-\u200b8 and GH-\u200b42)" in texts  # still readable
    assert "GH-x or GH 9" in texts
    fences = shown_texts(tokens)  # quoted prose: references broken there too, the words unchanged
    assert re.sub(r"(?i)(gh-|#)(?=\d)", "\\g<1>\u200b", text) + "\n" in fences
    assert "GH-\u200b2 inside code stays as written\n" in fences
    assert "```text\ndef f():\n    return 'GH-2'\n    x = 1\n```" in code_block(
        "def f():\n    return 'GH-2'\n    x = 1", 100
    )
    assert inline("GH-12 gh-3") == "GH-&#8203;12 gh-&#8203;3"


def test_inline_and_code_block_escaping_units():
    assert inline("a|b<c>&d@e") == "a&#124;b&lt;c&gt;&amp;d@&#8203;e"
    assert inline("line one\n\nline two") == "line one line two"
    assert inline("x" * 50, 10) == "x" * 10 + "…"
    assert inline("see https://a.example and WWW.b.example") == "see https:&#8203;//a.example and WWW&#8203;.b.example"
    block = code_block("a ````` b", 100)
    assert block.startswith("``````text\n") and block.endswith("\n``````\n")
    assert code_block("x" * 20, 5).endswith("<sub>… 15 more characters not shown</sub>\n")


def test_leaf_path_cannot_read_outside_generated(tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "samples.jsonl").write_text(
        json.dumps(make_sample("../secret/qna.yaml", "knowledge", 0, "SECRET QUESTION", "SECRET")) + "\n"
    )
    summary = write_run(tmp_path, {ASTRO: []})
    data = json.loads(summary.read_text())
    data["leaves"]["../secret/qna.yaml"] = data["leaves"][ASTRO]
    data["leaves"][str(secret / "qna.yaml")] = data["leaves"][ASTRO]
    summary.write_text(json.dumps(data))
    # a symlinked samples file or rejected.jsonl (as an untrusted artifact might hold) is not followed out either
    linked = tmp_path / "generated" / "knowledge" / "linked"
    linked.mkdir(parents=True)
    (linked / "samples.jsonl").symlink_to(secret / "samples.jsonl")
    (tmp_path / "generated" / "review" / "rejected.jsonl").unlink()
    (tmp_path / "generated" / "review" / "rejected.jsonl").symlink_to(secret / "rejected.jsonl")
    (secret / "rejected.jsonl").write_text(
        json.dumps({"leaf": ASTRO, "stage": "judge", "reason": "SECRET", "candidate": "SECRET"}) + "\n"
    )
    data["leaves"]["knowledge/linked/qna.yaml"] = data["leaves"][ASTRO]
    summary.write_text(json.dumps(data))
    proc = run_labtax("comment", "--summary", str(summary), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (
        "SECRET" not in proc.stdout
        and "../secret/qna.yaml" in proc.stdout
        and "knowledge/linked/qna.yaml" in proc.stdout
    )


# --------------------------------------------------------------------------- size limit


def test_many_leaves_fit_the_github_limit_and_say_what_was_cut(tmp_path):
    leaves = {}
    for n in range(120):
        leaf = f"knowledge/topic_{n:03d}/sub/qna.yaml"
        leaves[leaf] = [
            make_sample(
                leaf,
                "knowledge",
                i,
                f"Question {i} about topic {n}? " + "🙂" * 50,
                "An answer with multi-byte text: " + "🙂é" * 700,
            )
            for i in range(5)
        ]
    summary = write_run(tmp_path, leaves)
    lint = tmp_path / "lint.json"
    lint.write_text(
        json.dumps(
            {
                "files": 120,
                "errors": 0,
                "warnings": 300,
                "findings": [
                    {
                        "path": f"knowledge/topic_{n % 120:03d}/sub/qna.yaml",
                        "line": n,
                        "col": 1,
                        "rule_id": "LT009",
                        "level": "warning",
                        "message": "question should end with '?' " + "x" * 100,
                        "hint": "add '?'",
                    }
                    for n in range(300)
                ],
            }
        )
    )
    proc = run_labtax("comment", "--summary", str(summary), "--lint-report", str(lint), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    md = proc.stdout
    assert len(md.encode("utf-8")) <= GITHUB_COMMENT_LIMIT
    assert len(md.encode("utf-8")) > GITHUB_COMMENT_LIMIT * 0.8  # cut to fit, not cut to nothing
    assert "✂️ **Cut to fit GitHub's 65,536-character comment limit:**" in md
    shown = md.count("\n### ⚠️ <code>topic&#95;")  # the shortest names that tell the leaves apart
    assert 0 < shown < 120
    assert f"sample details of {120 - shown} of 120 leaves" in md
    assert "### Lint: ⚠️ 0 errors, 300 warnings in 120 files" in md  # the lint verdict survives
    assert "more findings not shown" in md
    rows = re.findall(r"^\| ⚠️ <code>topic&#95;\d+/sub</code>", md, flags=re.M)
    assert rows  # the overview table survives (perhaps cut itself, then said so)
    if len(rows) < 120:
        assert f"{120 - len(rows)} more leaves not shown" in md
    assert_safe_markdown(md)


def test_max_chars_option_and_post_refuses_more_than_github_allows(tmp_path):
    summary = normal_run(tmp_path)
    proc = run_labtax("comment", "--summary", str(summary), "--max-chars", "3000", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.encode()) <= 3000 and "Cut to fit" in proc.stdout
    lint = tmp_path / "lint.json"
    lint.write_text(
        json.dumps(
            {
                "files": 2,
                "errors": 60,
                "warnings": 0,
                "findings": [
                    {
                        "path": ASTRO,
                        "line": n,
                        "col": 1,
                        "rule_id": "LT001",
                        "level": "error",
                        "message": "m" * 200,
                        "hint": "h" * 150,
                    }
                    for n in range(60)
                ],
            }
        )
    )
    proc = run_labtax(
        "comment", "--summary", str(summary), "--lint-report", str(lint), "--max-chars", "20000", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.encode()) <= 20000
    assert (
        proc.stdout.count("\n- ❌ error ") == 10 and "50 lint findings" in proc.stdout
    )  # cut from 50 shown to 10, and said so
    assert_cells_intact(proc.stdout)
    proc = run_labtax(
        "comment",
        "--summary",
        str(summary),
        "--max-chars",
        "100000",
        "--post",
        "--repo",
        REPO_NAME,
        "--pr",
        "1",
        cwd=tmp_path,
        env={"GITHUB_TOKEN": TOKEN},
    )
    assert proc.returncode == 2 and "65,536" in proc.stderr


# --------------------------------------------------------------------------- fake GitHub


class FakeGitHub:
    """Issue comments per pull request, paged with Link headers, token checked, failures on demand."""

    def __init__(self, page_size: int = 100):
        self.page_size = page_size
        self.comments: dict[int, list[dict]] = {}
        self.requests: list[tuple[str, str]] = []
        self.fail_status: int | None = None
        self.next_id = 5000
        # None: the token is an Actions/App installation token (GET /user answers 403, comments are
        # written as github-actions[bot]); a login: a personal token of that user.
        self.user_login: str | None = None
        self.redirect_to: str | None = None  # answer every request with a 302 to this origin
        self.moved: dict[str, str] = {}  # renamed repository: path prefix -> new prefix (301 GET, 307 others)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, pr: int, body: str, login: str = "alice", kind: str = "User") -> int:
        self.next_id += 1
        self.comments.setdefault(pr, []).append(
            {
                "id": self.next_id,
                "body": body,
                "user": {"login": login, "type": kind},
                "html_url": f"https://github.example/{REPO_NAME}/pull/{pr}#issuecomment-{self.next_id}",
            }
        )
        return self.next_id

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status, payload, headers=()):
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for key, value in headers:
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(raw)

            def _handle(self, method):
                url = urllib.parse.urlsplit(self.path)
                fake.requests.append((method, self.path))
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length)) if length else None
                auth = self.headers.get("Authorization", "")
                if fake.redirect_to:
                    return self._reply(302, {}, [("Location", fake.redirect_to + self.path)])
                for old, new in fake.moved.items():
                    if url.path.startswith(old):
                        location = fake.url + new + self.path[len(old) :]
                        return self._reply(301 if method == "GET" else 307, {}, [("Location", location)])
                if fake.fail_status:  # echo the credentials back, as a careless proxy might
                    return self._reply(fake.fail_status, {"message": f"failed for {auth}"})
                if auth != f"Bearer {TOKEN}":
                    return self._reply(401, {"message": "Bad credentials"})
                if url.path == "/user" and method == "GET":
                    if fake.user_login is None:
                        return self._reply(403, {"message": "Resource not accessible by integration"})
                    return self._reply(200, {"login": fake.user_login, "type": "User"})
                if m := re.fullmatch(r"/repos/octo/taxonomy/issues/(\d+)/comments", url.path):
                    pr = int(m.group(1))
                    if method == "GET":
                        query = urllib.parse.parse_qs(url.query)
                        per_page = min(int(query.get("per_page", ["30"])[0]), fake.page_size)
                        page = int(query.get("page", ["1"])[0])
                        items = fake.comments.get(pr, [])
                        chunk = items[(page - 1) * per_page : page * per_page]
                        headers = []
                        if page * per_page < len(items):
                            headers.append(
                                (
                                    "Link",
                                    f'<{fake.url}{url.path}?per_page={per_page}&page={page + 1}>; rel="next", '
                                    f'<{fake.url}{url.path}?per_page={per_page}&page=99>; rel="last"',
                                )
                            )
                        return self._reply(200, chunk, headers)
                    if method == "POST":
                        author = (fake.user_login, "User") if fake.user_login else ("github-actions[bot]", "Bot")
                        new = fake.add(pr, payload["body"], *author)
                        return self._reply(201, next(c for c in fake.comments[pr] if c["id"] == new))
                if m := re.fullmatch(r"/repos/octo/taxonomy/issues/comments/(\d+)", url.path):
                    for comment in (c for items in fake.comments.values() for c in items):
                        if comment["id"] == int(m.group(1)) and method == "PATCH":
                            comment["body"] = payload["body"]
                            return self._reply(200, comment)
                return self._reply(404, {"message": "Not Found"})

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_PATCH(self):
                self._handle("PATCH")

        return Handler

    def bot_comments(self, pr: int) -> list[dict]:
        return [c for c in self.comments.get(pr, []) if c["body"].startswith(MARKER)]


@pytest.fixture
def github():
    fake = FakeGitHub()
    thread = threading.Thread(target=fake.server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def post(summary: Path, github: FakeGitHub, *extra, token: str = TOKEN, pr: str = "7"):
    env = {"GITHUB_TOKEN": token, "GITHUB_API_URL": github.url, "GITHUB_REPOSITORY": REPO_NAME}
    return run_labtax("comment", "--summary", str(summary), "--post", "--pr", pr, *extra, cwd=summary.parent, env=env)


def test_post_creates_then_updates_the_same_comment(tmp_path, github):
    github.add(7, "Looks good to me!")
    summary = normal_run(tmp_path, accepted=2)
    first = post(summary, github)
    assert first.returncode == 0, first.stderr
    assert re.search(r"labtax: created comment \d+ on octo/taxonomy#7", first.stdout)
    assert [c["body"].count("2 / 5") for c in github.bot_comments(7)] == [1]
    comment_id = github.bot_comments(7)[0]["id"]

    summary = normal_run(tmp_path, accepted=5)  # the contributor pushed a fix
    second = post(summary, github)
    assert second.returncode == 0, second.stderr
    assert f"labtax: updated comment {comment_id}" in second.stdout
    bots = github.bot_comments(7)
    assert len(bots) == 1 and bots[0]["id"] == comment_id
    assert "5 / 5" in bots[0]["body"] and "2 / 5" not in bots[0]["body"]
    assert len(github.comments[7]) == 2  # the human comment is untouched
    assert github.comments[7][0]["body"] == "Looks good to me!"
    listing = "/repos/octo/taxonomy/issues/7/comments"
    calls = [(method, path.split("?")[0]) for method, path in github.requests]
    assert calls == [
        ("GET", "/user"),
        ("GET", listing),
        ("POST", listing),
        ("GET", "/user"),
        ("GET", listing),
        ("PATCH", f"/repos/octo/taxonomy/issues/comments/{comment_id}"),
    ]
    assert TOKEN not in first.stdout + first.stderr + second.stdout + second.stderr


def test_post_finds_the_bot_comment_on_a_later_page(tmp_path, github):
    github.page_size = 30  # the server caps per_page, so the client must follow Link headers
    for n in range(70):
        github.add(3, f"review comment {n} mentioning {MARKER[:4]}")
    github.add(3, "a quote of the bot: " + MARKER)  # contains the marker, but not at the start
    old = github.add(3, MARKER + "\nold report", "github-actions[bot]", "Bot")
    for n in range(5):
        github.add(3, f"later comment {n}")
    proc = post(normal_run(tmp_path), github, pr="3")
    assert proc.returncode == 0, proc.stderr
    gets = [path for method, path in github.requests if method == "GET" and "/comments" in path]
    assert len(gets) == 3 and gets[-1].endswith("page=3")
    assert github.requests[-1] == ("PATCH", f"/repos/octo/taxonomy/issues/comments/{old}")
    assert len(github.comments[3]) == 77
    assert github.bot_comments(3)[0]["body"].startswith(MARKER + "\n## 🧪 labtax")


def test_post_never_updates_a_marker_comment_written_by_someone_else(tmp_path, github):
    """Anyone can start a comment with the hidden marker: only the token's own comment is updated.

    With an Actions token (GET /user answers 403) that is github-actions[bot]'s; a user, or another
    app's bot, that copies the marker gets a new comment beside theirs, and theirs stays as it was."""
    forged = MARKER + "\n## 🧪 labtax: ✅ looks good\n\n**Training:** ✅ learned"
    mallory = github.add(7, forged, "mallory", "User")
    other_bot = github.add(7, forged, "evil-app[bot]", "Bot")
    lookalike = github.add(7, forged, "github-actions", "User")  # no [bot]: a person's account name
    summary = normal_run(tmp_path, accepted=2)
    first = post(summary, github)
    assert first.returncode == 0, first.stderr
    assert "labtax: created comment" in first.stdout
    assert not [c for c in github.requests if c[0] == "PATCH"]
    ours = [c for c in github.comments[7] if c["user"]["login"] == "github-actions[bot]"]
    assert len(ours) == 1 and "2 / 5" in ours[0]["body"]
    assert [c["body"] for c in github.comments[7] if c["id"] in (mallory, other_bot, lookalike)] == [forged] * 3

    second = post(normal_run(tmp_path, accepted=5), github)
    assert second.returncode == 0, second.stderr
    assert f"labtax: updated comment {ours[0]['id']}" in second.stdout
    assert [m for m, _ in github.requests].count("PATCH") == 1 and "5 / 5" in ours[0]["body"]
    assert [c["body"] for c in github.comments[7] if c["id"] in (mallory, other_bot, lookalike)] == [forged] * 3


def test_post_with_a_personal_token_updates_only_that_users_comment(tmp_path, github):
    """With a user's token, GET /user names the author to look for; an earlier forged comment is skipped."""
    github.user_login = "labtax-bot"
    forged = github.add(7, MARKER + "\nforged", "mallory", "User")
    old_bot = github.add(7, MARKER + "\nreport of the Actions bot", "github-actions[bot]", "Bot")
    ours = github.add(7, MARKER + "\nold report", "labtax-bot", "User")
    proc = post(normal_run(tmp_path), github)
    assert proc.returncode == 0, proc.stderr
    assert github.requests[-1] == ("PATCH", f"/repos/octo/taxonomy/issues/comments/{ours}")
    bodies = {c["id"]: c["body"] for c in github.comments[7]}
    assert bodies[forged] == MARKER + "\nforged" and bodies[old_bot] == MARKER + "\nreport of the Actions bot"
    assert bodies[ours].startswith(MARKER + "\n## 🧪 labtax")


def test_post_as_another_app_names_its_bot_login(tmp_path, github):
    """An App installation token that is not Actions' own: LABTAX_BOT_LOGIN says whose comment is ours."""
    actions = github.add(7, MARKER + "\nActions' report", "github-actions[bot]", "Bot")
    app = github.add(7, MARKER + "\nthe app's report", "labtax-app[bot]", "Bot")
    env = {"LABTAX_BOT_LOGIN": "labtax-app[bot]"}
    proc = run_labtax(
        "comment",
        "--summary",
        str(normal_run(tmp_path)),
        "--post",
        "--pr",
        "7",
        cwd=tmp_path,
        env={"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": github.url, "GITHUB_REPOSITORY": REPO_NAME, **env},
    )
    assert proc.returncode == 0, proc.stderr
    assert github.requests[-1] == ("PATCH", f"/repos/octo/taxonomy/issues/comments/{app}")
    assert next(c for c in github.comments[7] if c["id"] == actions)["body"] == MARKER + "\nActions' report"


class Recorder:
    """Another origin (another port of 127.0.0.1): records the headers of whatever reaches it."""

    def __init__(self):
        self.seen: list[dict] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                recorder.seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
                raw = b"[]" if self.command == "GET" else b"{}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PATCH = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_token_is_never_sent_to_another_origin_on_a_redirect(tmp_path, github):
    """GITHUB_API_URL answers with a 302 to another origin: the client stops, and the token never leaves."""
    other = Recorder()
    try:
        github.redirect_to = other.url
        proc = post(normal_run(tmp_path), github)
    finally:
        other.close()
    assert [h.get("authorization") for h in other.seen if h.get("authorization")] == []
    assert proc.returncode == 2 and "redirected" in proc.stderr and "another origin" in proc.stderr, proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
    assert github.requests and all(c[0] == "GET" for c in github.requests)


def test_redirects_within_the_api_origin_are_followed(tmp_path, github):
    """A renamed repository: GitHub answers 301 for GET and 307 for POST on the same origin; both work."""
    github.moved = {"/repos/octo/old-name/": "/repos/octo/taxonomy/"}
    env = {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": github.url, "GITHUB_REPOSITORY": "octo/old-name"}
    proc = run_labtax("comment", "--summary", str(normal_run(tmp_path)), "--post", "--pr", "7", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert len(github.bot_comments(7)) == 1
    assert ("POST", "/repos/octo/old-name/issues/7/comments") in github.requests
    assert ("POST", "/repos/octo/taxonomy/issues/7/comments") in github.requests


@pytest.mark.parametrize(
    "status, expected",
    [
        (401, "401 Unauthorized): check that GITHUB_TOKEN"),
        (403, "403 Forbidden): the token may not comment here"),
        (404, "404 Not Found): check --repo OWNER/NAME, --pr N"),
        (422, "422 Unprocessable Entity)"),
        (500, "server error (500)"),
        (503, "server error (503)"),
    ],
)
def test_github_errors_are_clear_and_never_leak_the_token(tmp_path, github, status, expected):
    github.fail_status = status
    proc = post(normal_run(tmp_path), github)
    assert proc.returncode == 2
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr
    output = proc.stdout + proc.stderr
    assert TOKEN not in output and TOKEN[4:20] not in output
    assert "failed for Bearer ***" in proc.stderr  # GitHub's own message is kept, with the token redacted


def test_wrong_token_and_missing_settings(tmp_path, github):
    summary = normal_run(tmp_path)
    proc = post(summary, github, token="ghp_wrongwrongwrong")
    assert proc.returncode == 2 and "401" in proc.stderr and "ghp_wrongwrongwrong" not in proc.stdout + proc.stderr
    proc = post(summary, github, token="")
    assert proc.returncode == 2 and "GITHUB_TOKEN is not set" in proc.stderr
    proc = run_labtax(
        "comment",
        "--summary",
        str(summary),
        "--post",
        "--pr",
        "7",
        cwd=tmp_path,
        env={"GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": ""},
    )
    assert proc.returncode == 2 and "--repo OWNER/NAME" in proc.stderr
    assert github.requests[-1][0] == "GET" and len(github.requests) == 1  # only the wrong-token attempt reached it


def test_unreachable_or_insecure_api_url(tmp_path):
    summary = normal_run(tmp_path)
    env = {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": "http://127.0.0.1:9"}
    proc = run_labtax(
        "comment", "--summary", str(summary), "--post", "--repo", REPO_NAME, "--pr", "1", cwd=tmp_path, env=env
    )
    assert proc.returncode == 2 and "could not reach the GitHub API at http://127.0.0.1:9" in proc.stderr
    env["GITHUB_API_URL"] = "http://github.example.com/api/v3"
    proc = run_labtax(
        "comment", "--summary", str(summary), "--post", "--repo", REPO_NAME, "--pr", "1", cwd=tmp_path, env=env
    )
    assert proc.returncode == 2 and "plain http" in proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr


def test_pr_number_from_the_actions_event(tmp_path, github):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "synchronize", "number": 12, "pull_request": {"number": 12}}))
    env = {
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_API_URL": github.url,
        "GITHUB_REPOSITORY": REPO_NAME,
        "GITHUB_EVENT_PATH": str(event),
    }
    proc = run_labtax("comment", "--summary", str(normal_run(tmp_path)), "--post", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert len(github.bot_comments(12)) == 1


def test_leaf_table_itself_is_cut_when_leaves_are_countless(tmp_path):
    summary = write_run(tmp_path, {f"compositional_skills/area_{n:04d}/qna.yaml": [] for n in range(600)})
    proc = run_labtax("comment", "--summary", str(summary), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    md = proc.stdout
    assert len(md.encode("utf-8")) <= GITHUB_COMMENT_LIMIT
    rows = len(re.findall(r"^\| ❌ <code>area&#95;\d{4}</code>", md, flags=re.M))
    assert 50 < rows < 600
    assert f"| _{600 - rows} more leaves not shown_ | | | |" in md
    assert md.count("\n- <code>area&#95;") == rows  # the full paths of the rows shown, folded under the table
    note = md.index(f"{600 - rows} rows of the leaf table")
    assert md.index("**What to do**") < note < md.index("| Leaf |")  # the cut note sits under the header
    assert "**Data:** ❌ 0 of 3,000 requested samples accepted for 600 leaves" in md
    assert_cells_intact(md)


def test_renders_what_labtax_generate_really_writes(tmp_path):
    """The contract end to end: real `labtax generate` output (a fake OpenAI teacher) into `labtax comment`."""
    from .fake_openai import FakeOpenAI, Reply, good_teacher, stage_of
    from .test_generate import generate, make_taxonomy, read_jsonl

    def judge_rejects_some(request):  # every other pair judged bad, so rejections show up too
        if stage_of(request) == "judge_pair":
            judge_rejects_some.n += 1
            if judge_rejects_some.n % 2:
                return Reply("1")
        return good_teacher(request)

    judge_rejects_some.n = 0
    root = make_taxonomy(tmp_path / "tax", ("freeform", "knowledge"))
    out = tmp_path / "generated"
    with FakeOpenAI(responder=judge_rejects_some) as fake:
        generate(root, fake, out, n=2)
    summary = json.loads((out / "summary.json").read_text())
    proc = run_labtax("comment", "--summary", str(out / "summary.json"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    md = proc.stdout
    tokens = assert_safe_markdown(md)
    assert_cells_intact(md)
    totals = summary["totals"]
    assert f"{totals['accepted']} of {totals['requested']} requested samples accepted for 2 leaves" in md
    fences = set(shown_texts(tokens))
    for leaf, stats in summary["leaves"].items():
        assert inline(leaf) in md
        samples = read_jsonl(out / leaf.removesuffix("qna.yaml") / "samples.jsonl")
        assert len(samples) == stats["accepted"]
        for sample in samples[:3]:
            answer = next(m["content"] for m in sample["messages"] if m["role"] == "assistant")
            assert answer[:1500] + "\n" in fences
    rejected = read_jsonl(out / "review" / "rejected.jsonl")
    assert rejected and all(f"❌ {inline(r['reason'])} at {inline(r['stage'])}" in md for r in rejected[:1])


# --------------------------------------------------------------------------- what to do, gate, judge probability


def test_quoted_prose_opens_no_block_and_keeps_its_lines():
    """Prose is shown as a blockquote (it wraps; a code block clips at ~95 characters): no line of it may open
    a list, heading, code block, table, HTML block or link definition, and every line stays a line."""
    hostile = (
        "First line with @team and #12\n- a list item?\n1. an ordered one?\n---\nSetext?\n===\n"
        "    indented code?\n\t\ttabbed\n# heading?\n> nested quote?\n| a | b |\n|---|---|\n"
        "[ref]: https://evil.example\n<div>html block?</div>\n~~~\nfence?\n\n\nlast \\\\ line\\"
    )
    block = quote_block(hostile, 5000)
    tokens = assert_safe_markdown(block)
    kinds = {t.type for t in tokens}
    assert kinds <= {
        "blockquote_open",
        "blockquote_close",
        "paragraph_open",
        "paragraph_close",
        "inline",
        "text",
        "hardbreak",
    }
    (text,) = shown_texts(tokens)
    lines = text.replace("\u200b", "").replace("\u00a0", " ").rstrip("\n").split("\n")
    assert lines[:4] == ["First line with @team and #12", "- a list item?", "1. an ordered one?", "---"]
    assert "    indented code?" in lines and "        tabbed" in lines and "[ref]: https://evil.example" in lines
    assert lines[-2:] == ["", "last \\\\ line\\"]  # blank lines keep paragraphs apart; no trailing break leaks
    assert text_block("def f(x):\n    return x\n    pass", 100).startswith("```text\n")  # code stays code
    assert quote_block("x" * 50, 10).endswith("\n\n<sub>… 40 more characters not shown</sub>\n")


def test_plurals_are_plain_english(tmp_path):
    summary = write_run(tmp_path, {ASTRO: [make_sample(ASTRO, "knowledge", 0, "Q?", "A.")]}, requested={ASTRO: 1})
    train = tmp_path / "train.json"
    train.write_text(
        json.dumps(
            {"verdict": "learned", "verdict_line": "learned: knowledge 2 -> 1 over 1 leaf/leaves, 3 question(s)"}
        )
    )
    proc = run_labtax("comment", "--summary", str(summary), "--train-report", str(train), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "1 of 1 requested samples accepted for 1 leaf" in proc.stdout and "1 leaf/leaves" not in proc.stdout
    assert "over 1 leaf, 3 questions" in proc.stdout and "(s)" not in proc.stdout
    assert fix_plurals("over 6 leaf/leaves, 1 question(s)") == "over 6 leaves, 1 question"


def test_failed_training_names_the_leaf_and_what_to_do(tmp_path):
    """'❌ needs changes' from a tiny training phase must say what failed, how much it weighs, and what to check."""
    summary = normal_run(tmp_path, accepted=5)
    report = json.loads(train_report(tmp_path / "t.json", verdict="did not learn").read_text())
    report["model"], report["heldout_examples"] = "SmolLM2-135M-Instruct", 3
    report["phases"][1]["heldout"][POEMS] = {"loss_before": 2.6, "loss_after": 2.72, "role": "trained"}
    (tmp_path / "t.json").write_text(json.dumps(report))
    proc = run_labtax("comment", "--summary", str(summary), "--train-report", str(tmp_path / "t.json"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    md = proc.stdout
    assert md.splitlines()[1] == "## 🧪 labtax: ❌ needs changes: training"
    (item,) = [line for line in md.splitlines() if line.startswith("- ❌ **Training**")]
    assert "the held-out loss rose on <code>haiku</code> (+4.6%) in the skills phase" in item
    assert (
        "smoke signal (30 training steps on <code>SmolLM2-135M-Instruct</code>, scored on 3 held-out seed examples)"
        in item
    )
    assert "check that those leaves' seed answers are correct and consistent" in item
    assert not [line for line in md.splitlines() if line.startswith("- ❌ **Data**")]  # data and lint are fine
    assert_safe_markdown(md)


def test_failing_data_says_which_leaf_and_what_to_do(tmp_path):
    summary = write_run(
        tmp_path,
        {ASTRO: []},
        [{"leaf": ASTRO, "stage": "judge", "reason": "judge_score", "candidate": "x"}] * 3
        + [{"leaf": ASTRO, "stage": "qa", "reason": "truncated", "candidate": "y"}],
    )
    data = json.loads(summary.read_text())
    data["leaves"][ASTRO]["note"] = "accepted 0 of 5 requested after 4 candidates (raise --max-attempts)"
    summary.write_text(json.dumps(data))
    md = run_labtax("comment", "--summary", str(summary), cwd=tmp_path).stdout
    (item,) = [line for line in md.splitlines() if line.startswith("- ❌ **Data**")]
    assert item.startswith("- ❌ **Data**, <code>pulsars</code>: 0 of 5 requested samples accepted")
    assert "(rejected: judge&#95;score 3, truncated 1)" in item and "raise --max-attempts" in item
    assert "Check that its seed answers are correct" in item


def test_gate_and_judge_probability_are_shown(tmp_path):
    """Fields another stage adds: the judge gate per leaf, a probability per sample (shown instead of scores)."""
    summary = normal_run(tmp_path, accepted=5)
    data = json.loads(summary.read_text())
    data["leaves"][ASTRO]["gate"] = {
        "good_accepted": 5,
        "good_total": 5,
        "bad_rejected": 6,
        "bad_total": 6,
        "separates": True,
    }
    data["leaves"][POEMS]["gate"] = {
        "good_accepted": 3,
        "good_total": 5,
        "bad_rejected": 2,
        "bad_total": 6,
        "separates": False,
    }
    data["leaves"][POEMS]["note"] = "and one more thing"  # the generator's own; the verdict is the gate field
    summary.write_text(json.dumps(data))
    samples = tmp_path / "generated" / ASTRO.removesuffix("qna.yaml") / "samples.jsonl"
    records = [json.loads(line) for line in samples.read_text().splitlines()]
    records[0]["judge"]["probability"] = 0.934
    records[1]["judge"]["probability"] = "<img src=x>"  # not a probability: the scores are shown instead
    samples.write_text("".join(json.dumps(r) + "\n" for r in records))
    proc = run_labtax("comment", "--summary", str(summary), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    md = proc.stdout
    assert "| ✅ <code>pulsars</code><br><sub>knowledge</sub> | 5 / 5<br><sub>gate 5/5 good,<br>6/6 bad</sub> |" in md
    assert (
        "| ⚠️ <code>haiku</code><br><sub>compositional</sub> | 5 / 5<br><sub>⚠️ gate 3/5 good,<br>2/6 bad</sub> |" in md
    )
    haiku = md[md.index("### ⚠️ <code>haiku</code>") :]
    assert (
        "> ⚠️ **The judge could not separate good from bad on this leaf's own examples; accepted samples are unvetted.**"
        in haiku
    )
    assert "**Data:** ⚠️" in md
    assert "- ⚠️ **Data**, <code>haiku</code>: the judge could not separate good from bad on this leaf's own" in md
    assert "Judge gate: the judge accepted 3 of 5 of the leaf's held-out seed examples and rejected 2 of 6" in haiku
    # the gate's warning is rendered from its field, once in each place, and the generator's note kept
    assert md.count("could not separate good from bad") == 2 and "held-out seeds accepted 3/5" not in md
    assert "> and one more thing" in haiku
    assert "<sub>Judge: probability good 0.93 · faithfulness: supported by the document</sub>" in md
    assert md.count("<sub>Judge: faithfulness 3 (supported by the document) · relevance 2</sub>") == 5
    assert_safe_markdown(md)
    assert_cells_intact(md)


def test_a_judges_one_digit_reply_is_not_shown_as_its_reason():
    """A judge asked for one digit replies "3": the record keeps it as the criterion's reason, but beside the
    probability (or the score) it says nothing, so the comment shows only reasons that explain."""
    from labtax.comment.render import render_judge

    judge = {
        "criteria": [
            {"name": "judge_pair", "score": 3, "probability": 0.91, "reason": "3"},
            {"name": "relevance", "score": 0, "probability": 0.97, "reason": "likelier after its own question"},
        ],
        "probability": 0.91,
        "vetted": "yes",
    }
    shown = render_judge(judge)
    assert shown == "<sub>Judge: probability good 0.91 · relevance: likelier after its own question</sub>\n"
    judge["probability"] = None
    assert render_judge(judge) == "<sub>Judge: judge&#95;pair 3 · relevance 0 (likelier after its own question)</sub>\n"


def test_short_names_tell_leaves_apart():
    names = short_names(["a/x/haiku/qna.yaml", "b/x/haiku/qna.yaml", "c/y/haiku/qna.yaml", "d/pulsars/qna.yaml", "odd"])
    assert names == {
        "a/x/haiku/qna.yaml": "a/x/haiku",
        "b/x/haiku/qna.yaml": "b/x/haiku",
        "c/y/haiku/qna.yaml": "y/haiku",
        "d/pulsars/qna.yaml": "pulsars",
        "odd": "odd",
    }


def test_a_rejected_candidate_without_a_question_is_titled_by_its_text():
    record = {
        "leaf": ASTRO,
        "reason": "parse_failure",
        "stage": "judge_question",
        "candidate": {"question": "", "reply": "Dear @team,"},
        "detail": "",
    }
    assert render_rejected(record, 100).startswith(
        "<details><summary>❌ parse&#95;failure at judge&#95;question: Dear @&#8203;team,</summary>"
    )


def test_calls_whose_prompts_were_shortened_to_fit_the_context_window_are_flagged_in_the_leaf_table(tmp_path):
    """#27 item 4: a reviewer sees that a leaf's prompts did not fit the teacher's context window."""
    summary = normal_run(tmp_path)
    data = json.loads(summary.read_text())
    data["leaves"][ASTRO]["prompts_shortened"] = 3
    summary.write_text(json.dumps(data))
    proc = run_labtax("comment", "--summary", str(summary), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "| 14<br><sub>+1 cached</sub><br><sub>⚠️ 3 shortened to fit</sub> |" in proc.stdout
    assert proc.stdout.count("shortened to fit") == 1
