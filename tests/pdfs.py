"""Tiny PDFs made at test time (no PDF library needed to write them): pages of text lines in
Helvetica at chosen sizes, optionally "encrypted" (a standard security handler whose empty user
password does not open it) or truncated."""

from __future__ import annotations


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(pages: list[list[tuple[float, str]]], *, encrypted: bool = False) -> bytes:
    """pages: per page, (font size, line) from the top."""
    objects: list[bytes] = []
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
    objects.append((1, b"<< /Type /Catalog /Pages 2 0 R >>"))
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
