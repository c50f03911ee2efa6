"""PDF outlines (bookmarks, nested, by /Dest or by GoTo action) name the headings of the chunks, on every
pypdfium2 the package declares (`>=4.30,<6`): the installed 5.x here, 4.30.0 in a subprocess (slow). A PDF
that cannot be read is a note for its own leaf; the run goes on for the others."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labtax import documents
from labtax.documents import read as reader
from labtax.errors import LabtaxError

from .conftest import REPO
from .fake_openai import FakeOpenAI
from .pdfs import Bookmark, make_pdf

BODY = 11  # every line at the body size: the headings can only come from the outline
PAGES = [
    [
        (BODY, "Part One: Setup"),
        (BODY, "Installing the lamp"),
        (BODY, "Plug it in and switch it on."),
        (BODY, "Unpacking"),
        (BODY, "Keep the box for returns."),
    ],
    [(BODY, "Part Two: Care"), (BODY, "Cleaning"), (BODY, "Wipe the lens with a dry cloth.")],
    [(BODY, "Spare parts"), (BODY, "Lens"), (BODY, "Order a new lens from the shop.")],
]
OUTLINE = [
    Bookmark(
        "Part One: Setup",
        0,
        [Bookmark("Installing the lamp", 0), Bookmark("Unpacking", 0, action=True)],
    ),
    Bookmark("Part Two: Care", 1, [Bookmark("Cleaning", 1, [Bookmark("Lens", 2)])], action=True),
    Bookmark("Réglages", 2, action=True),  # a UTF-16 title, not in the page's text
]


def outline_pdf() -> bytes:
    return make_pdf(PAGES, outline=OUTLINE)


def headings_by_page(data: bytes) -> list[list[str]]:
    return [[title for _, title in section.headings] for section in reader.read("manual.pdf", data)]


EXPECTED = [
    ["Part One: Setup", "Installing the lamp", "Unpacking"],
    ["Part Two: Care", "Cleaning"],
    ["Réglages", "Lens"],  # "Réglages" is not on the page: it heads the page from its start
]


def test_nested_bookmarks_name_the_headings_at_every_level():
    assert headings_by_page(outline_pdf()) == EXPECTED


def test_chunks_carry_the_nearest_bookmark_as_their_heading(tmp_path):
    docs = tmp_path / "documents" / "lamp"
    docs.mkdir(parents=True)
    (docs / "manual.pdf").write_bytes(outline_pdf())
    chunks, note = documents.chunks_for(
        tmp_path, {"repo": "./documents/lamp", "commit": "HEAD", "patterns": ["*.pdf"]}, 350
    )
    assert note is None
    assert [(c.page, c.heading) for c in chunks] == [(1, "Part One: Setup"), (2, "Part Two: Care"), (3, "Réglages")]


def test_an_outline_that_loops_is_read_once():
    """The second bookmark's /Next points back at the first: PDFium follows that loop; the reader stops."""
    data = make_pdf(PAGES[:1], outline=[Bookmark("Part One: Setup", 0), Bookmark("Unpacking", 0)])
    looped = data.replace(b"/Prev 7 0 R", b"/Next 7 0 R")  # same length: the xref still holds
    assert looped != data
    assert headings_by_page(looped) == [["Part One: Setup", "Unpacking"]]


LOWEST = "4.30.0"  # pyproject.toml: pypdfium2>=4.30,<6

PROBE = """
import json, sys
import pypdfium2
from labtax.documents import read
data = open(sys.argv[1], "rb").read()
headings = [[title for _, title in section.headings] for section in read.read("manual.pdf", data)]
print(json.dumps({"file": pypdfium2.__file__, "version": pypdfium2.V_PYPDFIUM2, "headings": headings}))
"""


def test_the_lowest_declared_pypdfium2_reads_the_same_outline(tmp_path):
    """pip installs pypdfium2 4.30.0 into a folder put first on PYTHONPATH (about 2 s from PyPI); the same
    reader runs on it in a subprocess. Skipped, saying why, where PyPI cannot be reached."""
    target = tmp_path / "pdfium4"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--timeout", "20", "--retries", "1"]
        + ["--target", str(target), f"pypdfium2=={LOWEST}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if pip.returncode != 0:
        pytest.skip(f"cannot install pypdfium2=={LOWEST} (no PyPI?): {pip.stderr.strip()[-300:]}")
    pdf = tmp_path / "manual.pdf"
    pdf.write_bytes(outline_pdf())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(Path(reader.__file__).parents[2])])}
    proc = subprocess.run([sys.executable, "-c", PROBE, str(pdf)], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert found["file"].startswith(str(target)) and found["version"] == LOWEST, found
    assert found["headings"] == EXPECTED


GOOD = "knowledge/science/biology/photosynthesis/qna.yaml"
PDF_LEAF = "knowledge/technology/version_control/git_basics/qna.yaml"


def two_knowledge_leaves(root: Path) -> Path:
    """This repository's photosynthesis leaf (Markdown) and its git leaf, whose document is now a PDF with
    nested bookmarks."""
    for leaf, docs in ((GOOD, "photosynthesis"), (PDF_LEAF, "git_basics")):
        shutil.copytree(REPO / leaf.rsplit("/", 1)[0], root / leaf.rsplit("/", 1)[0])
        shutil.copytree(REPO / "documents" / docs, root / "documents" / docs)
    (root / "documents/git_basics/git_basics.md").unlink()
    (root / "documents/git_basics/manual.pdf").write_bytes(outline_pdf())
    qna = root / PDF_LEAF
    qna.write_text(qna.read_text(encoding="utf-8").replace('- "*.md"', '- "*.pdf"'), encoding="utf-8")
    return root


def generate(root: Path, fake: FakeOpenAI, out: Path) -> tuple[int, str, dict]:
    """`labtax generate` in this process (so that a test can break one reader): status, stdout, summary."""
    from click.testing import CliRunner

    from labtax.main import cli

    env = {"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-test", "LABTAX_TEACHER_MODEL": "fake-teacher"}
    args = [
        "generate",
        "--root",
        str(root),
        "-n",
        "2",
        "--no-progress",
        "--no-calibrate",
        "--keep-unvetted",
        "--output",
        str(out),
    ]
    result = CliRunner().invoke(cli, args, env=env, standalone_mode=False)
    if result.exception is not None and not isinstance(result.exception, LabtaxError):
        raise result.exception
    status = result.exception.exit_code if isinstance(result.exception, LabtaxError) else result.return_value or 0
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").is_file() else {}
    return status, result.stdout, summary


def test_a_knowledge_run_reads_a_pdf_with_nested_bookmarks(tmp_path):
    """The blocker: on pypdfium2 5 a PDF with an outline raised AttributeError and ended every leaf's run."""
    root = two_knowledge_leaves(tmp_path / "tax")
    with FakeOpenAI() as fake:
        status, stdout, summary = generate(root, fake, tmp_path / "out")
    assert status == 0, stdout
    assert {leaf: (s["accepted"], s["note"]) for leaf, s in summary["leaves"].items()} == {
        GOOD: (2, None),
        PDF_LEAF: (2, None),
    }
    samples = [json.loads(line) for line in (tmp_path / "out/knowledge.jsonl").read_text().splitlines()]
    headings = {s["provenance"]["document"]["heading"] for s in samples if s["leaf"] == PDF_LEAF}
    assert headings and headings <= {"Part One: Setup", "Part Two: Care", "Réglages"}


def test_a_document_that_cannot_be_read_costs_its_leaf_only(tmp_path):
    """PDFium failing inside one PDF (its page tree counts a page it does not have; PDFs are read in a child
    process, so the failure is a real one, not one injected here): that leaf gets one no_documents rejection
    whose note names the file and the failure; the other leaf gets its samples and the run exits 0, as for
    any leaf without documents."""
    root = two_knowledge_leaves(tmp_path / "tax")
    pdf = root / "documents/git_basics/manual.pdf"
    pdf.write_bytes(pdf.read_bytes().replace(b"/Count 3", b"/Count 4"))  # same length: the xref still holds
    with FakeOpenAI() as fake:
        status, stdout, summary = generate(root, fake, tmp_path / "out")
    assert status == 0, stdout
    good, bad = summary["leaves"][GOOD], summary["leaves"][PDF_LEAF]
    assert good["accepted"] == 2
    assert (bad["accepted"], bad["rejected"], bad["teacher_calls"]) == (0, {"no_documents": 1}, 0)
    reason = "documents/git_basics/manual.pdf: the PDF cannot be read (PdfiumError: Failed to load page.)"
    assert reason in bad["note"] and f"  note: {bad['note']}" in stdout


def test_a_failure_while_finding_the_documents_costs_its_leaf_only(tmp_path, monkeypatch):
    """Not only reading: whatever fails while a leaf's documents are found (here the disk under the cache)
    is that leaf's note."""
    resolve = documents.resolve

    def failing(root, document, **kwargs):
        if "git_basics" in document["repo"]:
            raise OSError(28, "No space left on device")
        return resolve(root, document, **kwargs)

    monkeypatch.setattr(documents, "resolve", failing)
    root = two_knowledge_leaves(tmp_path / "tax")
    with FakeOpenAI() as fake:
        status, stdout, summary = generate(root, fake, tmp_path / "out")
    assert status == 0, stdout
    assert summary["leaves"][GOOD]["accepted"] == 2
    bad = summary["leaves"][PDF_LEAF]
    assert bad["rejected"] == {"no_documents": 1}
    assert "the documents could not be read (OSError: [Errno 28] No space left on device)" in bad["note"]


# --- text bombs (#24 item 7) -------------------------------------------------------------------------


def test_a_page_past_the_character_bound_is_a_finding_for_its_document(tmp_path):
    """A 57 KB PDF expanded to 15 million characters (2.4 GB of memory): a page past MAX_PAGE_CHARS is
    refused, named, for its document only (the leaf's note in generate)."""
    from .pdfs import text_bomb_pdf

    bomb = text_bomb_pdf(300_000)
    assert len(bomb) < 5_000
    with pytest.raises(reader.ReadError, match=r"page 1 has 300000 characters, over the 100000 a page may have"):
        reader.read("bomb.pdf", bomb)
    docs = tmp_path / "documents/fruit"
    docs.mkdir(parents=True)
    (docs / "bomb.pdf").write_bytes(bomb)
    (docs / "fine.md").write_text("# Fruit\n\nApples grow on trees.\n", encoding="utf-8")
    chunks, note = documents.chunks_for(
        tmp_path, {"repo": "./documents/fruit", "commit": "HEAD", "patterns": ["*.pdf", "*.md"]}, 350
    )
    assert [c.source for c in chunks] == ["documents/fruit/fine.md"]
    assert note.startswith("documents/fruit/bomb.pdf: page 1 has 300000 characters"), note


def test_a_document_past_the_character_bound_is_refused_at_the_page_that_passes_it(monkeypatch):
    from .pdfs import text_bomb_pdf

    monkeypatch.setattr(reader, "MAX_DOCUMENT_CHARS", 120_000)
    with pytest.raises(reader.ReadError, match=r"text passes 120000 characters \(at page 3\)"):
        reader.read("many.pdf", text_bomb_pdf(50_000, pages=5))
    with pytest.raises(reader.ReadError, match=r"text passes 120000 characters"):
        reader.read("big.md", b"word " * 30_000)


def test_a_pdf_that_needs_too_much_memory_costs_its_document_not_the_process(monkeypatch):
    """PDFium builds a page's text (about 200 bytes a character) before anything can count it: the PDF is
    read in a child process under a memory limit, which a bomb exhausts there, not here."""
    from .pdfs import text_bomb_pdf

    monkeypatch.setattr(reader, "PDF_MEMORY_BYTES", 200 * 1024 * 1024)
    with pytest.raises(reader.ReadError, match=r"needed more than 200 MB of memory"):
        reader.read("bomb.pdf", text_bomb_pdf(2_000_000))
    assert [s.page for s in reader.read("manual.pdf", outline_pdf())] == [1, 2, 3]  # an ordinary PDF still reads
