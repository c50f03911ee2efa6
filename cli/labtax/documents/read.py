"""Document bytes -> text sections that remember where they came from (page, heading, offsets).

Markdown, plain text and PDF, the types InstructLab reads. PDFs are read with pypdfium2 (PDFium, the
engine in Chrome: fast, Apache-2.0/BSD, a binary wheel, no models to download); headings come from the
PDF's outline when it has one, else from lines set larger than the page's body text.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

TEXT_SUFFIXES = (".md", ".markdown", ".txt", ".rst")
PDF_SUFFIXES = (".pdf",)
READABLE_SUFFIXES = TEXT_SUFFIXES + PDF_SUFFIXES
_MD_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)


class ReadError(Exception):
    """A document that cannot be read (encrypted or broken PDF, ...), with the reason."""


@dataclass(frozen=True)
class Section:
    """A run of text from one place: a whole text file, or one page of a PDF."""

    text: str
    page: int | None  # 1-based PDF page; None for text files
    offset: int  # where `text` starts in the document's extracted text, in UTF-8 bytes
    headings: tuple[tuple[int, str], ...]  # (character offset inside `text`, heading) in order


def read(path: str, data: bytes) -> list[Section]:
    """The document's sections; ReadError when it cannot be read."""
    suffix = "." + path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if suffix in PDF_SUFFIXES:
        return _read_pdf(data)
    text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
    headings = (
        tuple((m.start(), m.group(1).strip()) for m in _MD_HEADING.finditer(text))
        if suffix in (".md", ".markdown")
        else ()
    )
    return [Section(text, None, 0, headings)]


def _read_pdf(data: bytes) -> list[Section]:
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
        outline: dict[int, list[str]] = {}
        try:
            for item in pdf.get_toc():
                if item.page_index is not None:
                    outline.setdefault(item.page_index, []).append(item.title.strip())
        except pdfium.PdfiumError:
            outline = {}
        sections, offset = [], 0
        for index in range(len(pdf)):
            page = pdf[index]
            textpage = page.get_textpage()
            text = textpage.get_text_range().replace("\r\n", "\n").replace("\r", "\n")
            headings = _outline_headings(text, outline.get(index, [])) or _large_lines(textpage, text, pdfium)
            sections.append(Section(text, index + 1, offset, headings))
            offset += len(text.encode("utf-8")) + 1  # pages joined by a form feed in the extracted text
            textpage.close()
            page.close()
        return sections
    finally:
        pdf.close()


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
