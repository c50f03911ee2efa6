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


@pytest.mark.parametrize(
    "pattern",
    ["**/**/*.md", "**/docs/**/*.md", "docs/**/deep/**", ".*/**", "**/.secret/*.md", "*/**/*.md", "docs/**"],
)
def test_glob_match_agrees_with_glob_for_repeated_and_hidden_stars(tree, pattern):
    test_glob_match_agrees_with_glob(tree, pattern)


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        ("/".join(["**"] * 8) + "/x.md", "/".join(["d"] * 40) + "/y.md"),
        ("/".join(["**/a*"] * 8) + "/**/b.md", "/".join(["a"] * 40) + "/c.md"),
    ],
)
def test_glob_match_is_linear_in_the_path(pattern, path):
    """Eight `**` over a deep folder tried every split of the path among them (exponential): offline lint,
    diff and generate hung. Matching walks the path once per pattern part. A child process bounds the run."""
    import subprocess
    import sys

    code = f"from labtax.documents.local import glob_match; print(glob_match({pattern!r}, {path!r}))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "False", proc.stderr
