"""`--profile instructlab` gives InstructLab's own CI verdict on real contributor files."""

from __future__ import annotations

import json

import pytest

from labtax.config import load_config
from labtax.lint import lint
from labtax.select import Selection

from .conftest import CORPUS, run_labtax


def _history_cases():
    verdicts = json.loads((CORPUS / "history-verdicts.json").read_text())
    return sorted(verdicts.items())


@pytest.mark.parametrize("key,verdict", _history_cases(), ids=[k for k, _ in _history_cases()])
def test_history_file_gets_instructlabs_verdict(key, verdict):
    blob, relpath = key.split("/", 1)
    root = CORPUS / "history" / blob
    result = lint(Selection(root, [relpath], explicit=True), load_config(root, profile="instructlab"))
    expected = verdict["ci_relaxed"]
    if expected["raised"]:
        # InstructLab crashed with a traceback; we must report a located error instead.
        assert result.errors >= 1
        assert all(f.line >= 1 and f.col >= 1 for f in result.findings)
        assert any(f.rule_id == "LT002" for f in result.findings)
    else:
        assert (result.errors > 0) == (expected["errors"] > 0), [f.message for f in result.findings]


def test_head_tree_passes_instructlab_profile_via_cli(corpus):
    proc = run_labtax("lint", "--profile", "instructlab", "--format", "json", cwd=corpus / "head")
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stdout
    assert report["files"] == 16 and report["errors"] == 0


def test_default_profile_is_stricter_on_head(corpus):
    """The default profile flags what InstructLab lets through (missing attribution.txt here)."""
    proc = run_labtax("lint", "--format", "json", cwd=corpus / "head")
    report = json.loads(proc.stdout)
    assert proc.returncode == 1
    assert {f["rule_id"] for f in report["findings"]} >= {"LT018"}
