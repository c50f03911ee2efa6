"""Document bytes -> text sections that remember where they came from (page, heading, offsets).

Markdown, plain text and PDF, the types InstructLab reads. PDFs are read with pypdfium2 (PDFium, the
engine in Chrome: fast, Apache-2.0/BSD, a binary wheel, no models to download); headings come from the
PDF's outline when it has one, else from lines set larger than the page's body text.

Documents come with pull requests, so their text is bounded: a page at most MAX_PAGE_CHARS characters, a
document MAX_DOCUMENT_CHARS (a 57 KB PDF expanded to 15 million). PDFium builds a page's text, about 200
bytes a character, before anything can count it, so a PDF is read in a child process under a memory and a
time limit: a bomb, or a crash inside PDFium, costs that document (a ReadError), never the run.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import statistics
import subprocess
import sys
from dataclasses import dataclass

TEXT_SUFFIXES = (".md", ".markdown", ".txt", ".rst")
PDF_SUFFIXES = (".pdf",)
READABLE_SUFFIXES = TEXT_SUFFIXES + PDF_SUFFIXES
_MD_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)
MAX_PAGE_CHARS = 100_000  # a dense page holds about 5,000
MAX_DOCUMENT_CHARS = 4_000_000  # about a thousand pages
PDF_MEMORY_BYTES = 1024 * 1024 * 1024  # the reading process's address space
PDF_TIMEOUT_S = 120


class ReadError(Exception):
    """A document that cannot be read (encrypted or broken PDF, ...), with the reason. The only exception
    `read` raises: a document that fails is a finding for its leaf, never the end of a run."""


@dataclass(frozen=True)
class Section:
    """A run of text from one place: a whole text file, or one page of a PDF."""

    text: str
    page: int | None  # 1-based PDF page; None for text files
    offset: int  # where `text` starts in the document's extracted text, in UTF-8 bytes
    headings: tuple[tuple[int, str], ...]  # (character offset inside `text`, heading) in order


# A Git LFS pointer file (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md): what a repository holds in
# place of a file stored in LFS, and all a clone has without `git lfs pull`. It is small and starts with this.
LFS_POINTER = re.compile(rb"\Aversion https://git-lfs\.github\.com/spec/v\d+\r?\n(?:[a-z0-9.-]+ [^\n]*\r?\n)*\Z")
LFS_POINTER_MAX_BYTES = 1024


def read(path: str, data: bytes) -> list[Section]:
    """The document's sections; ReadError when it cannot be read."""
    if len(data) <= LFS_POINTER_MAX_BYTES and LFS_POINTER.match(data):
        raise ReadError(
            "a Git LFS pointer, not the document: the file is stored in Git LFS, and labtax reads what the "
            "repository holds, never LFS storage; commit the document itself (git lfs migrate export --include=PATH)"
        )
    suffix = "." + path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if suffix in PDF_SUFFIXES:
        return _read_pdf(data)
    text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
    if len(text) > MAX_DOCUMENT_CHARS:
        raise ReadError(_too_long(None))
    headings = (
        tuple((m.start(), m.group(1).strip()) for m in _MD_HEADING.finditer(text))
        if suffix in (".md", ".markdown")
        else ()
    )
    return [Section(text, None, 0, headings)]


def _too_long(page: int | None) -> str:
    at = f" (at page {page})" if page else ""
    return (
        f"the document's text passes {MAX_DOCUMENT_CHARS} characters{at}, the most one document may have; "
        "split it, or keep the part the leaf needs"
    )


def _read_pdf(data: bytes) -> list[Section]:
    """The PDF's sections, read by a child process (`python -c`, the same interpreter and import path)
    under PDF_MEMORY_BYTES and PDF_TIMEOUT_S; the limits travel with it, so they are this module's."""
    limits = [PDF_MEMORY_BYTES, MAX_PAGE_CHARS, MAX_DOCUMENT_CHARS]
    code = f"from labtax.documents.read import _child; _child({limits!r})"
    # -P and a cwd of this package: nothing in the folder labtax runs in (a pull request's checkout) is imported.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(os.path.abspath(p) for p in sys.path if p)}
    try:
        proc = subprocess.run(
            [sys.executable, "-P", "-c", code],
            input=data,
            capture_output=True,
            timeout=PDF_TIMEOUT_S,
            env=env,
            cwd=os.path.dirname(os.path.abspath(__file__)),
        )
    except subprocess.TimeoutExpired:
        raise ReadError(
            f"reading the PDF took over {PDF_TIMEOUT_S} s; it is not read: re-export it, or convert it to Markdown"
        ) from None
    try:
        reply = json.loads(proc.stdout) if proc.returncode == 0 else None
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        raise ReadError(
            f"reading the PDF needed more than {PDF_MEMORY_BYTES >> 20} MB of memory, or PDFium failed on it (exit "
            f"{proc.returncode}); it is not read: re-export it, or convert it to Markdown"
        )
    if "error" in reply:
        raise ReadError(reply["error"])
    return [
        Section(s["text"], s["page"], s["offset"], tuple((at, title) for at, title in s["headings"]))
        for s in reply["sections"]
    ]


def _child(limits: list[int]) -> None:
    """The child's side: PDF bytes on stdin, JSON on stdout ({"sections": [...]} or {"error": reason})."""
    import resource

    global MAX_PAGE_CHARS, MAX_DOCUMENT_CHARS
    memory, MAX_PAGE_CHARS, MAX_DOCUMENT_CHARS = limits
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    data = sys.stdin.buffer.read()
    try:
        reply: dict = {"sections": [s.__dict__ for s in _read_pdf_here(data)]}
    except ReadError as exc:
        reply = {"error": str(exc)}
    except MemoryError:
        reply = {"error": f"reading the PDF needed more than {memory >> 20} MB of memory; it is not read"}
    sys.stdout.write(json.dumps(reply))


def _read_pdf_here(data: bytes) -> list[Section]:
    try:
        import pypdfium2 as pdfium
    except ImportError:
        raise ReadError("reading PDF documents needs pypdfium2: pip install 'labtax[generate]'") from None
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        reason = str(exc)
        if "password" in reason.lower():
            raise ReadError("the PDF is encrypted (password protected); commit an unencrypted copy") from None
        raise ReadError(f"the PDF cannot be read ({reason}); re-export it, or convert it to Markdown") from None
    try:
        return _pages(pdf, pdfium)
    except (ReadError, MemoryError):
        raise
    except Exception as exc:  # anything PDFium or pypdfium2 raises on this file costs this document, not the run
        raise ReadError(
            f"the PDF cannot be read ({type(exc).__name__}: {exc}); re-export it, or convert it to Markdown"
        ) from None
    finally:
        pdf.close()


def _pages(pdf, pdfium) -> list[Section]:
    outline = _outline(pdf, pdfium)
    sections, offset, total = [], 0, 0
    for index in range(len(pdf)):
        page = pdf[index]
        textpage = page.get_textpage()
        count = pdfium.raw.FPDFText_CountChars(textpage.raw)
        if count > MAX_PAGE_CHARS:
            raise ReadError(
                f"page {index + 1} has {count} characters, over the {MAX_PAGE_CHARS} a page may have (a text bomb?); "
                "the PDF is not read: re-export it, or convert it to Markdown"
            )
        total += count
        if total > MAX_DOCUMENT_CHARS:
            raise ReadError(_too_long(index + 1))
        text = textpage.get_text_range().replace("\r\n", "\n").replace("\r", "\n")
        headings = _outline_headings(text, outline.get(index, [])) or _large_lines(textpage, text, pdfium)
        sections.append(Section(text, index + 1, offset, headings))
        offset += len(text.encode("utf-8")) + 1  # pages joined by a form feed in the extracted text
        textpage.close()
        page.close()
    return sections


MAX_OUTLINE_DEPTH = 16  # nesting levels read; deeper bookmarks are not headings anyone reads
MAX_BOOKMARKS = 10_000  # bookmarks read per document
MAX_TITLE_CHARS = 500  # a longer "title" is no heading


def _outline(pdf, pdfium) -> dict[int, list[str]]:
    """Bookmark titles by 0-based page, every nesting level, in outline order.

    Walked with PDFium's C API (pypdfium2's `raw`), the same in every pypdfium2 declared (>=4.30,<6); the
    helper `get_toc()` is not (4.x yields items with `page_index`, 5.x `PdfBookmark`s with `get_dest()`).
    A bookmark names its page by /Dest or by a GoTo action (LaTeX's hyperref writes those). A bookmark met
    twice (a /Next pointing back) ends the walk: PDFium would follow the loop forever.
    """
    raw, doc, pages = pdfium.raw, pdf.raw, len(pdf)
    found: dict[int, list[str]] = {}
    seen: set[int] = set()

    def page_of(bookmark) -> int | None:
        dest = raw.FPDFBookmark_GetDest(doc, bookmark)
        if not dest:
            action = raw.FPDFBookmark_GetAction(bookmark)
            if action and raw.FPDFAction_GetType(action) == raw.PDFACTION_GOTO:
                dest = raw.FPDFAction_GetDest(doc, action)
        index = raw.FPDFDest_GetDestPageIndex(doc, dest) if dest else -1
        return index if 0 <= index < pages else None

    def title_of(bookmark) -> str:
        size = raw.FPDFBookmark_GetTitle(bookmark, None, 0)  # bytes of UTF-16LE, with the terminating NUL
        if size <= 2 or size > 2 * MAX_TITLE_CHARS + 2:
            return ""
        buffer = ctypes.create_string_buffer(size)
        raw.FPDFBookmark_GetTitle(bookmark, buffer, size)
        return buffer.raw[: size - 2].decode("utf-16-le", errors="replace").strip()

    def walk(bookmark, depth: int) -> None:
        while bookmark and len(seen) < MAX_BOOKMARKS:
            address = ctypes.cast(bookmark, ctypes.c_void_p).value or 0
            if address in seen:
                return
            seen.add(address)
            page, title = page_of(bookmark), title_of(bookmark)
            if page is not None and title:
                found.setdefault(page, []).append(title)
            if depth + 1 < MAX_OUTLINE_DEPTH:
                walk(raw.FPDFBookmark_GetFirstChild(doc, bookmark), depth + 1)
            bookmark = raw.FPDFBookmark_GetNextSibling(doc, bookmark)

    walk(raw.FPDFBookmark_GetFirstChild(doc, None), 0)
    return found


def _outline_headings(text: str, titles: list[str]) -> tuple[tuple[int, str], ...]:
    found = []
    for title in titles:
        at = text.find(title)
        found.append((max(at, 0), title))
    return tuple(sorted(found))


def _large_lines(textpage, text: str, pdfium) -> tuple[tuple[int, str], ...]:
    """Lines set noticeably larger than the page's body text: headings, for PDFs with no outline."""
    sizes = []
    raw = pdfium.raw
    count = raw.FPDFText_CountChars(textpage.raw)
    # get_text_range turns each generated "\r\n" into one "\n": walk both in step.
    index = 0
    for char in text:
        if index >= count:
            break
        sizes.append(raw.FPDFText_GetFontSize(textpage.raw, index))
        index += 2 if char == "\n" and raw.FPDFText_GetUnicode(textpage.raw, index) == 13 else 1
    if len(sizes) != len(text) or not sizes:
        return ()
    body = statistics.median(sizes)
    headings, start = [], 0
    for line in text.split("\n"):
        end = start + len(line)
        stripped = line.strip()
        if stripped and len(stripped) <= 120 and sizes[start:end] and min(sizes[start:end]) >= body * 1.2:
            headings.append((start, stripped))
        start = end + 1
    return tuple(headings)
