"""lint.report.printable: no file name can break an output's encoding or start a new line."""

import os

from labtax.lint.report import printable


def test_undecodable_bytes_become_hex_escapes():
    name = os.fsdecode(b"bad\xff\xfename")
    assert printable(name) == "bad\\xff\\xfename"
    printable(name).encode("utf-8")  # now encodable


def test_control_characters_and_lone_surrogates_are_visible():
    assert printable("two\nlines\tand\x1b[31mred") == "two\\nlines\\tand\\x1b[31mred"
    assert printable("\ud800") == "\\ud800"


def test_ordinary_text_is_unchanged():
    assert printable("knowledge/science/planètes/qna.yaml") == "knowledge/science/planètes/qna.yaml"
