"""Tiny PDFs made at test time (no PDF library needed to write them): pages of text lines in
Helvetica at chosen sizes, optionally "encrypted" (a standard security handler whose empty user
password does not open it) or truncated, optionally with an outline (bookmarks, nested)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Bookmark:
    """One outline entry: its title, the page (0-based) it points at, its children. `action`: point with a
    GoTo action (/A, as LaTeX's hyperref writes) instead of a plain /Dest."""

    title: str
    page: int
    children: list[Bookmark] = field(default_factory=list)
    action: bool = False


def _text_string(text: str) -> str:
    """A PDF text string: a literal when it is ASCII, else UTF-16BE with its byte-order mark (hex)."""
    if text.isascii():
        return f"({_escape(text)})"
    return "<FEFF" + text.encode("utf-16-be").hex().upper() + ">"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(
    pages: list[list[tuple[float, str]]], *, encrypted: bool = False, outline: list[Bookmark] | None = None
) -> bytes:
    """pages: per page, (font size, line) from the top; outline: the bookmarks, in order."""
    objects: list[tuple[int, bytes]] = []
    page_ids = []
    font_id = 3
    next_id = 4
    body = []
    for lines in pages:
        stream, y = ["BT"], 760.0
        for size, line in lines:
            y -= size * 1.6
            stream.append(f"/F1 {size} Tf 1 0 0 1 72 {y:.1f} Tm ({_escape(line)}) Tj")
        stream.append("ET")
        content = "\n".join(stream).encode("latin-1")
        content_id, page_id = next_id, next_id + 1
        next_id += 2
        body.append((content_id, b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream"))
        body.append(
            (
                page_id,
                f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_id} 0 R /Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode(),
            )
        )
        page_ids.append(page_id)
    outlines = ""
    if outline:
        next_id, items = _outline_objects(outline, page_ids, next_id)
        body += items
        outlines = f" /Outlines {items[0][0]} 0 R /PageMode /UseOutlines"
    objects.append((1, f"<< /Type /Catalog /Pages 2 0 R{outlines} >>".encode()))
    objects.append(
        (2, f"<< /Type /Pages /Kids [{' '.join(f'{i} 0 R' for i in page_ids)}] /Count {len(page_ids)} >>".encode())
    )
    objects.append((3, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"))
    objects += body
    if encrypted:
        objects.append(
            (next_id, b"<< /Filter /Standard /V 1 /R 2 /O <" + b"11" * 32 + b"> /U <" + b"22" * 32 + b"> /P -4 >>")
        )
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for number, data in sorted(objects):
        offsets[number] = len(out)
        out += f"{number} 0 obj\n".encode() + data + b"\nendobj\n"
    xref = len(out)
    count = max(offsets) + 1
    out += f"xref\n0 {count}\n0000000000 65535 f \n".encode()
    for number in range(1, count):
        out += f"{offsets[number]:010d} 00000 n \n".encode()
    extra = f" /Encrypt {next_id} 0 R /ID [<{'ab' * 16}> <{'ab' * 16}>]" if encrypted else ""
    out += f"trailer\n<< /Size {count} /Root 1 0 R{extra} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _outline_objects(outline: list[Bookmark], page_ids: list[int], next_id: int) -> tuple[int, list[tuple[int, bytes]]]:
    """The /Outlines dictionary (first) and one dictionary per bookmark, linked as PDF 1.7 section 12.3.3 says."""
    root, next_id = next_id, next_id + 1
    numbers: dict[int, int] = {}

    def number(items: list[Bookmark]) -> None:
        nonlocal next_id
        for item in items:
            numbers[id(item)] = next_id
            next_id += 1
            number(item.children)

    def count(items: list[Bookmark]) -> int:
        return sum(1 + count(item.children) for item in items)

    number(outline)
    out: list[tuple[int, bytes]] = []

    def write(items: list[Bookmark], parent: int) -> None:
        for i, item in enumerate(items):
            target = f"[{page_ids[item.page]} 0 R /XYZ 0 792 0]"
            fields = [
                f"/Title {_text_string(item.title)}",
                f"/Parent {parent} 0 R",
                f"/A << /S /GoTo /D {target} >>" if item.action else f"/Dest {target}",
            ]
            if i:
                fields.append(f"/Prev {numbers[id(items[i - 1])]} 0 R")
            if i + 1 < len(items):
                fields.append(f"/Next {numbers[id(items[i + 1])]} 0 R")
            if item.children:
                fields.append(f"/First {numbers[id(item.children[0])]} 0 R")
                fields.append(f"/Last {numbers[id(item.children[-1])]} 0 R")
                fields.append(f"/Count {count(item.children)}")
            out.append((numbers[id(item)], ("<< " + " ".join(fields) + " >>").encode()))
            write(item.children, numbers[id(item)])

    write(outline, root)
    first, last = numbers[id(outline[0])], numbers[id(outline[-1])]
    out.insert(0, (root, f"<< /Type /Outlines /First {first} 0 R /Last {last} 0 R /Count {count(outline)} >>".encode()))
    return next_id, out


def text_bomb_pdf(chars_per_page: int, pages: int = 1) -> bytes:
    """A few KB that PDFium expands to `chars_per_page` characters per page: one Flate-compressed content
    stream of repeated text-show operators (15 million characters fit in 57 KB), shared by every page."""
    import zlib

    show = "(" + "A" * 1000 + ") Tj\n"
    content = zlib.compress(("BT /F1 1 Tf 72 700 Td\n" + show * (chars_per_page // 1000) + "ET").encode(), 9)
    kids = " ".join(f"{4 + i} 0 R" for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    stream_id = 4 + pages
    objects += [
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {stream_id} 0 R /Resources << /Font << /F1 3 0 R >> >> >>".encode()
    ] * pages
    objects.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream")
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, data in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + data + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
