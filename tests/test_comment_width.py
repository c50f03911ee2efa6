"""The PR comment as GitHub shows it: rendered by a GitHub-flavoured renderer, does its widest table fit?

GitHub's comment column is 800 px wide on a pull request page; a table wider than that scrolls sideways
and hides its right-hand columns. The comment of a real `labtax generate` run (the repo's own leaves,
against the scripted fake OpenAI server, with a realistic lint report and training report) is rendered
with cmarkgfm (GitHub's cmark fork with its extensions), and each table's width is estimated from its
cells' text with a deliberately simple model:

- a table is as wide as its columns; a column as wide as its widest line of text (cells break at <br>
  and never wrap in this model, so it over- rather than under-estimates), plus 13 px padding each side
  and a 1 px border;
- text in GitHub's 16 px system font averages 7.5 px a character; <code> is 85 % monospace, 8.2 px a
  character plus 5.4 px of padding; <sub> text is set smaller (x 0.83); <strong> and header cells are
  bold (x 1.08); an emoji takes 20 px, zero-width and variation characters none.

Checked against headless Chromium (DejaVu fonts, wider than GitHub's): the model came within 3 % of
each column of this comment's leaf table. On a row of the table labtax rendered before (one column per
number, full leaf paths, a wall-clock column) the model says ~1,450 px; Chromium, wrapping the headers,
still needed 1,172 px: the last columns were off-screen.

`python -m tests.test_comment_width COMMENT.md PAGE.html [N]` writes the GitHub-like HTML page (its
first N samples opened) that docs/comment-example.png is a screenshot of (see docs/comment-example.md).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from labtax.comment import GITHUB_COMMENT_LIMIT

from .conftest import REPO, run_labtax
from .fake_openai import FakeOpenAI, Reply, good_teacher, stage_of

cmarkgfm = pytest.importorskip("cmarkgfm", reason="the test extra installs cmarkgfm, GitHub's Markdown renderer")

CONTENT_WIDTH = 800
TEXT_PX, CODE_PX, CODE_PAD = 7.5, 8.2, 5.4
SUB, BOLD, EMOJI_PX = 0.83, 1.08, 20.0
CELL_PAD, BORDER = 26.0, 1.0
TAXONOMY = ("compositional_skills", "foundational_skills", "knowledge", "documents")


# --------------------------------------------------------------------------- GitHub's rendering


def render_gfm(markdown: str) -> str:
    """HTML as GitHub renders a comment: GFM extensions, raw HTML kept (GitHub then sanitises it), hard breaks."""
    from cmarkgfm.cmark import Options

    return cmarkgfm.github_flavored_markdown_to_html(markdown, Options.CMARK_OPT_UNSAFE | Options.CMARK_OPT_HARDBREAKS)


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]  # cells' inner HTML

    @property
    def columns(self) -> int:
        return len(self.header)

    def column_widths(self) -> list[float]:
        return [
            max([cell_width(self.header[i], BOLD)] + [cell_width(row[i]) for row in self.rows if i < len(row)])
            for i in range(self.columns)
        ]

    def width(self) -> float:
        return sum(w + CELL_PAD + BORDER for w in self.column_widths()) + BORDER


def tables_of(page: str) -> list[Table]:
    tables = []
    for body in re.findall(r"(?s)<table>(.*?)</table>", page):
        rows = [re.findall(r"(?s)<t[hd][^>]*>(.*?)</t[hd]>", tr) for tr in re.findall(r"(?s)<tr>(.*?)</tr>", body)]
        tables.append(Table(rows[0], rows[1:]))
    return tables


def char_px(ch: str) -> float:
    """Width of one character in units of an average text character (emoji count in px, see text_px)."""
    if ch in "\u200b\u200c\u200d\ufe0f\ufe0e":
        return 0.0
    return -1.0 if ord(ch) >= 0x2600 and not 0x3000 <= ord(ch) <= 0x9FFF else 1.0


def cell_width(inner: str, bold: float = 1.0) -> float:
    """The widest line of a cell, in px, by the model in the module docstring (`bold` 1.08 for a header)."""
    widest = 0.0
    for line in re.split(r"<br\s*/?>", inner):
        width, scale, code = 0.0, bold, False
        for tag, text in re.findall(r"(<[^>]+>)|([^<]+)", line):
            if tag:
                name = tag.strip("</>").split()[0].lower()
                closing = tag.startswith("</")
                if name == "code":
                    code = not closing
                    width += 0 if closing else CODE_PAD * scale
                elif name == "sub":
                    scale = scale / SUB if closing else scale * SUB
                elif name == "strong":
                    scale = scale / BOLD if closing else scale * BOLD
                continue
            for ch in html.unescape(text):
                units = char_px(ch)
                width += EMOJI_PX * scale if units < 0 else units * (CODE_PX if code else TEXT_PX) * scale
        widest = max(widest, width)
    return widest


# --------------------------------------------------------------------------- a real run

# A training report as `labtax train` wrote it in a real run (the demo: SmolLM2-135M, 3 samples per leaf).
REAL_TRAIN_REPORT = {
    "model": "SmolLM2-135M-Instruct",
    "heldout_examples": 9,
    "verdict": "did not learn",
    "verdict_line": "did not learn: held-out answer loss knowledge 2.111 -> 1.964 (-7.0%) over 5 leaf/leaves, 8 steps in 27s; skills 2.640 -> 2.812 (+6.5%) over 3 leaf/leaves, 6 steps in 28s, replayed leaves 1.157 -> 1.281 (+10.8%)",
    "phases": [
        {
            "name": "knowledge",
            "steps": 8,
            "seconds": 26.7,
            "train_loss_first": 1.873,
            "train_loss_last": 1.771,
            "verdict": "learned",
            "heldout": {
                "foundational_skills/reasoning/arithmetic/multi_step_word_problems/qna.yaml": [1.632, 1.492],
                "foundational_skills/reasoning/logical/ordering/qna.yaml": [1.681, 1.618],
                "foundational_skills/reasoning/unit_conversion/qna.yaml": [0.820, 0.822],
                "knowledge/finance/financial_statements/reading_financial_statements/qna.yaml": [3.334, 3.005],
                "knowledge/science/biology/photosynthesis/qna.yaml": [3.090, 2.883],
            },
        },
        {
            "name": "skills",
            "steps": 6,
            "seconds": 28.1,
            "train_loss_first": 1.247,
            "train_loss_last": 0.719,
            "verdict": "did not learn",
            "heldout": {
                "compositional_skills/extraction/meeting_notes/action_items/qna.yaml": [3.429, 3.584],
                "compositional_skills/writing/business/ceo_earnings_email/qna.yaml": [1.817, 1.887],
                "compositional_skills/writing/rewriting/plain_language/qna.yaml": [2.673, 2.964],
                "foundational_skills/reasoning/arithmetic/multi_step_word_problems/qna.yaml": [
                    1.492,
                    1.752,
                    "replayed",
                ],
                "foundational_skills/reasoning/unit_conversion/qna.yaml": [0.822, 0.811, "replayed"],
            },
        },
    ],
    "examples": [
        {
            "leaf": "knowledge/finance/financial_statements/reading_financial_statements/qna.yaml",
            "question": "How do you calculate net margin?",
            "reference": "Net margin is net income divided by revenue.",
            "before": "To calculate the Net Margin (NM), you need to subtract Total Margin from the Total Profit and then divide by Total Revenue. Here's a step-by-step process:\n\n1. Calculate Total Profit: This is",
            "after": "To calculate the net margin of an investment or business operation using a formula that takes into account both cost and return:\n\n1. Calculate the total revenue (profit) from all sources minus the total expenses. This is typically done by multiplying the",
        }
    ],
}


def real_train_report() -> dict:
    report = json.loads(json.dumps(REAL_TRAIN_REPORT))
    for phase in report["phases"]:
        phase["heldout"] = {
            leaf: {"loss_before": v[0], "loss_after": v[1], "role": v[2] if len(v) > 2 else "trained"}
            for leaf, v in phase["heldout"].items()
        }
    return report


def realistic_teacher(request: dict) -> Reply:
    """The fake teacher, with the judge turning down every third candidate so rejections show up too."""
    if stage_of(request).startswith("judge"):
        realistic_teacher.judged += 1  # type: ignore[attr-defined]
        if realistic_teacher.judged % 3 == 0:  # type: ignore[attr-defined]
            return Reply("1")
    return good_teacher(request)


realistic_teacher.judged = 0  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def real_comment(tmp_path_factory) -> str:
    """`labtax lint`, `labtax generate` (fake teacher) and `labtax comment` on a copy of this repo's leaves."""
    root = tmp_path_factory.mktemp("width") / "taxonomy"
    for folder in TAXONOMY:
        shutil.copytree(REPO / folder, root / folder)
    out = root.parent / "generated"
    env = {"OPENAI_API_KEY": "sk-test", "LABTAX_TEACHER_MODEL": "fake-teacher"}
    with FakeOpenAI(responder=realistic_teacher) as fake:
        env["OPENAI_BASE_URL"] = fake.base_url
        run_labtax("generate", "-n", "3", "--output", str(out), "--no-progress", cwd=root, env=env, check=True)
    lint = root.parent / "lint.json"
    run_labtax("lint", "--format", "json", "--output", str(lint), cwd=root)
    train = root.parent / "train_report.json"
    train.write_text(json.dumps(real_train_report()), encoding="utf-8")
    args = ("--summary", str(out / "summary.json"), "--lint-report", str(lint), "--train-report", str(train))
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["leaves"]) == 9 and any(leaf["rejected"] for leaf in summary["leaves"].values())
    return run_labtax("comment", *args, cwd=root, check=True).stdout


# --------------------------------------------------------------------------- the checks


def test_the_widest_table_fits_githubs_800_px_column(real_comment):
    page = render_gfm(real_comment)
    tables = tables_of(page)
    assert len(tables) == 3  # leaves, training phases, held-out losses
    leaf_table = tables[0]
    assert leaf_table.columns == 4 and len(leaf_table.rows) == 9
    assert all(len(row) == table.columns for table in tables for row in table.rows)
    widest = max(tables, key=Table.width)
    assert widest.width() <= CONTENT_WIDTH, f"{widest.width():.0f} px: " + ", ".join(
        f"{w:.0f}" for w in widest.column_widths()
    )


def test_the_comment_stays_under_githubs_size_limit(real_comment):
    assert len(real_comment.encode("utf-8")) <= GITHUB_COMMENT_LIMIT
    page = render_gfm(real_comment)
    assert "raw HTML omitted" not in page and "<table>" in page
    assert "<pre" not in page  # the run's answers are prose: quoted, so they wrap instead of scrolling


def test_the_model_sees_the_old_table_overflow():
    """The model, on a row of the table labtax rendered before: ~1,450 px (1,172 px in Chromium), far past 800."""
    old = (
        "| | Leaf | Kind | Accepted / requested | Rejected (by reason) | Teacher calls (cached) | Time |\n"
        "|---|---|---|---|---|---|---|\n"
        "| ✅ | <code>knowledge/finance/financial&#95;statements/reading&#95;financial&#95;statements/qna.yaml</code> "
        "| knowledge | 3 / 3 | 4: judge&#95;score 4 | 20 (0) | 4 min 46 s |\n"
    )
    (table,) = tables_of(render_gfm(old))
    assert table.columns == 7 and 1400 < table.width() < 1500


def test_long_names_and_big_counts_still_fit(tmp_path):
    """Long leaf names (cut to 30 characters), 3-digit counts, a judge gate and long reason names in every row."""
    from labtax.comment.inputs import load_inputs
    from labtax.comment.render import render_comment

    reasons = {"restates_the_question_badly": 321, "wrong_language_or_script": 222, "repetition_loop": 111, "x": 1}
    leaves = {
        f"compositional_skills/{n}/a_really_quite_long_leaf_name_for_a_skill_{n}/qna.yaml": {
            "kind": "compositional",
            "requested": 500,
            "accepted": 499,
            "rejected": reasons,
            "teacher_calls": 9999,
            "cached_calls": 999,
            "gate": {"good_accepted": 19, "good_total": 20, "bad_rejected": 20, "bad_total": 20, "separates": False},
        }
        for n in range(12)
    }
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"run": {}, "leaves": leaves}), encoding="utf-8")
    (table,) = tables_of(render_gfm(render_comment(load_inputs(summary))))
    assert len(table.rows) == 12 and table.width() <= CONTENT_WIDTH, [round(w) for w in table.column_widths()]


def test_cell_width_model_units():
    assert cell_width("abcd") == 4 * TEXT_PX
    assert cell_width("ab<br><sub>abcdefghij</sub>") == pytest.approx(10 * TEXT_PX * SUB)
    assert cell_width("✅ <code>x</code>") == pytest.approx(EMOJI_PX + TEXT_PX + CODE_PAD + CODE_PX)
    assert cell_width("a&#8203;b &amp;") == 4 * TEXT_PX
    assert cell_width("ab<br>abc", BOLD) == pytest.approx(3 * TEXT_PX * BOLD)


# --------------------------------------------------------------------------- the docs page

PAGE_CSS = """
body { margin: 0; background: #fff; }
.markdown-body { box-sizing: border-box; width: 800px; padding: 16px; color: #1f2328;
  font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif;
  font-size: 16px; line-height: 1.5; word-wrap: break-word; }
.markdown-body h2 { font-size: 1.5em; padding-bottom: .3em; border-bottom: 1px solid #d1d9e0; margin: 24px 0 16px; }
.markdown-body h3 { font-size: 1.25em; margin: 24px 0 16px; }
.markdown-body p, .markdown-body ul, .markdown-body blockquote, .markdown-body table, .markdown-body pre,
.markdown-body details { margin-top: 0; margin-bottom: 16px; }
.markdown-body ul { padding-left: 2em; }
.markdown-body blockquote { margin-left: 0; padding: 0 1em; color: #59636e; border-left: .25em solid #d1d9e0; }
.markdown-body code { font-family: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, monospace;
  font-size: 85%; padding: .2em .4em; background: rgba(129, 139, 152, .12); border-radius: 6px; white-space: break-spaces; }
.markdown-body pre { padding: 16px; overflow: auto; font-size: 85%; line-height: 1.45; background: #f6f8fa; border-radius: 6px; }
.markdown-body pre code { padding: 0; background: transparent; font-size: 100%; white-space: pre; }
.markdown-body table { display: block; width: max-content; max-width: 100%; overflow: auto; border-spacing: 0;
  border-collapse: collapse; }
.markdown-body table th { font-weight: 600; }
.markdown-body table th, .markdown-body table td { padding: 6px 13px; border: 1px solid #d1d9e0; }
.markdown-body table tr:nth-child(2n) { background-color: #f6f8fa; }
.markdown-body summary { cursor: pointer; }
.markdown-body sub { font-size: smaller; vertical-align: sub; line-height: 0; }
"""


def github_page(markdown: str, open_samples: int = 0) -> str:
    """A page that looks like a GitHub comment at its 800 px width, for a screenshot (the first samples opened)."""
    body = render_gfm(markdown)
    for _ in range(open_samples):
        body = body.replace("<details><summary>Sample ", "<details open><summary>Sample ", 1)
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>labtax comment</title>'
        f"<style>{PAGE_CSS}</style></head><body><article class='markdown-body'>{body}</article></body></html>\n"
    )


if __name__ == "__main__":
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    opened = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    Path(target).write_text(github_page(source.read_text(encoding="utf-8"), opened), encoding="utf-8")
