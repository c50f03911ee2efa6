"""`--output` of `labtax lint` and `labtax comment` as a user passes it: a file, '-', a symlink, a device."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from .conftest import run_labtax
from .test_generate import make_taxonomy


@pytest.fixture
def taxonomy(tmp_path) -> Path:
    return make_taxonomy(tmp_path / "tax", ("freeform",))


@pytest.fixture
def summary(tmp_path) -> Path:
    path = tmp_path / "gen" / "summary.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"run": {}, "leaves": {}}))
    return path


def _lint(taxonomy: Path, output: str):
    return run_labtax("lint", "--format", "text", "--output", output, cwd=taxonomy)


def _comment(summary: Path, output: str):
    return run_labtax("comment", "--summary", str(summary), "--output", output, cwd=summary.parent)


def _assert_usage_error(proc, *words):
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("labtax: error: --output ")
    for word in words:
        assert word in proc.stderr


def test_lint_output_dash_is_json_on_stdout_and_the_report_on_stderr(taxonomy):
    proc = _lint(taxonomy, "-")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)  # stdout holds the JSON and nothing else
    assert report["files"] == 1 and report["errors"] == 0
    assert "Traceback" not in proc.stderr
    assert not (taxonomy / "-").exists()


def test_comment_output_dash_is_stdout(summary):
    proc = _comment(summary, "-")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("<!-- labtax-bot -->") and not (summary.parent / "-").exists()


@pytest.mark.parametrize("command", ["lint", "comment"])
def test_output_symlink_is_refused_and_left_alone(tmp_path, taxonomy, summary, command):
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me")
    link = tmp_path / "report.out"
    link.symlink_to(target)
    proc = _lint(taxonomy, str(link)) if command == "lint" else _comment(summary, str(link))
    _assert_usage_error(proc, "is a symlink", str(target), "'-' for stdout")
    assert link.is_symlink() and os.readlink(link) == str(target) and target.read_text() == "keep me"


@pytest.mark.parametrize("command", ["lint", "comment"])
@pytest.mark.parametrize(
    "output,words", [("/proc/self/fd/1", ("is a symlink",)), ("/dev/null", ("not a regular file", "character device"))]
)
def test_output_that_is_not_a_regular_file_is_a_clear_usage_error(taxonomy, summary, command, output, words):
    proc = _lint(taxonomy, output) if command == "lint" else _comment(summary, output)
    _assert_usage_error(proc, output, *words)


@pytest.mark.parametrize("command", ["lint", "comment"])
def test_output_fifo_is_refused_without_blocking(tmp_path, taxonomy, summary, command):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    proc = _lint(taxonomy, str(fifo)) if command == "lint" else _comment(summary, str(fifo))
    _assert_usage_error(proc, "not a regular file", "a pipe")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


@pytest.mark.parametrize("command", ["lint", "comment"])
def test_output_regular_file_is_written_atomically_with_umask_mode(tmp_path, taxonomy, summary, command):
    out = tmp_path / "sub" / "report.out"
    old = os.umask(0o022)
    try:
        proc = _lint(taxonomy, str(out)) if command == "lint" else _comment(summary, str(out))
    finally:
        os.umask(old)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o644 and out.read_text().strip()
    assert [p.name for p in out.parent.iterdir()] == ["report.out"]
