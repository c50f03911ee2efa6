"""documents.local.glob_match: the pattern semantics of glob.glob(pattern, recursive=True), without a walk."""

import glob
import os

import pytest

from labtax.documents.local import glob_match

FILES = ["a.md", "b.txt", ".hidden.md", "docs/c.md", "docs/deep/d.md", "docs/.secret/e.md", "other/f.pdf"]


@pytest.fixture
def tree(tmp_path):
    for rel in FILES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    return tmp_path


@pytest.mark.parametrize(
    "pattern", ["*.md", "**/*.md", "docs/*.md", "docs/**/*.md", "*/*.pdf", "**", "a.md", "docs/deep/*"]
)
def test_glob_match_agrees_with_glob(tree, pattern):
    expected = {
        p.replace(os.sep, "/") for p in glob.glob(pattern, root_dir=tree, recursive=True) if (tree / p).is_file()
    }
    assert {rel for rel in FILES if glob_match(pattern, rel)} == expected
