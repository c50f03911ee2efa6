"""fileio: atomic writes honour the umask and never replace a symlink or a non-regular file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from labtax.errors import LabtaxError
from labtax.fileio import write_json_atomic, write_text_atomic

from .conftest import run_labtax


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class _Umask:
    def __init__(self, mask: int):
        self.mask = mask

    def __enter__(self):
        self.old = os.umask(self.mask)

    def __exit__(self, *exc):
        os.umask(self.old)


@pytest.mark.parametrize("mask,expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_honour_the_umask(tmp_path, mask, expected):
    with _Umask(mask):
        write_text_atomic(tmp_path / "new.txt", "a\n")
        write_json_atomic(tmp_path / "deep" / "new.json", {"a": 1})
        (tmp_path / "old.txt").write_text("before")
        os.chmod(tmp_path / "old.txt", 0o600)
        write_text_atomic(tmp_path / "old.txt", "after", durable=False)
    for name in ("new.txt", "deep/new.json", "old.txt"):
        assert _mode(tmp_path / name) == expected, name
    assert (tmp_path / "old.txt").read_text() == "after"
    assert not [p for p in tmp_path.rglob("*.tmp")]  # no temp file left behind


def test_labtax_new_files_honour_the_umask(tmp_path):
    for mask, expected in ((0o022, 0o644), (0o077, 0o600)):
        root = tmp_path / f"tax{mask:o}"
        root.mkdir()
        with _Umask(mask):  # inherited by the subprocess
            proc = run_labtax("new", "compositional", "writing/poetry/haiku", "--root", str(root), cwd=root)
        assert proc.returncode == 0, proc.stderr
        leaf = root / "compositional_skills/writing/poetry/haiku"
        assert _mode(leaf / "qna.yaml") == expected and _mode(leaf / "attribution.txt") == expected


def test_a_symlink_is_refused_not_replaced(tmp_path):
    target = tmp_path / "target.txt"
    target.write_text("keep")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    with pytest.raises(LabtaxError, match="is a symlink"):
        write_text_atomic(link, "new")
    assert link.is_symlink() and target.read_text() == "keep"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_non_regular_file_is_refused(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(LabtaxError, match=r"not a regular file .a pipe."):
        write_text_atomic(fifo, "x")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
