"""labtax.main: exit codes that mean one thing (0 ok, 1 findings, 2 usage/environment, 3 a bug, 130/143 a
signal) whatever the command. The signal codes are tested on real runs in tests/test_generate_cli.py."""

from __future__ import annotations

import shutil
from pathlib import Path

from .conftest import REPO, run_labtax

LEAF = REPO / "compositional_skills/writing/business/ceo_earnings_email/qna.yaml"


def _taxonomy(root: Path) -> Path:
    shutil.copytree(LEAF.parent, root / LEAF.relative_to(REPO).parent)
    return root


def test_clean_is_0_findings_1_usage_2(tmp_path):
    root = _taxonomy(tmp_path / "tax")
    assert run_labtax("lint", cwd=root).returncode == 0
    (root / "compositional_skills/writing/business/ceo_earnings_email/qna.yaml").write_text("version: 3\n")
    findings = run_labtax("lint", cwd=root)
    assert findings.returncode == 1 and "error" in findings.stdout
    usage = run_labtax("lint", "--format", "nonsense", cwd=root)
    assert usage.returncode == 2 and "nonsense" in usage.stderr


def test_lint_outside_a_taxonomy_is_a_usage_error_unless_allowed(tmp_path):
    """A CI job in the wrong folder used to pass on '0 errors in 0 files'."""
    empty = tmp_path / "not-a-taxonomy"
    empty.mkdir()
    (empty / ".git").mkdir()  # the root search stops here
    refused = run_labtax("lint", cwd=empty)
    assert refused.returncode == 2, refused
    assert "no taxonomy in" in refused.stderr and "compositional_skills/" in refused.stderr
    assert "--allow-empty" in refused.stderr and "Traceback" not in refused.stderr
    allowed = run_labtax("lint", "--allow-empty", cwd=empty)
    assert allowed.returncode == 0 and "in 0 files" in allowed.stdout
    # Files named on the command line (the pre-commit hook) and --root are not refused.
    root = _taxonomy(tmp_path / "tax")
    assert run_labtax("lint", "--root", str(root), cwd=empty).returncode == 0


def test_a_bug_exits_3_with_one_line_and_the_traceback_saved(tmp_path, monkeypatch):
    """A crash is not a finding: exit 1 would read as 'lint errors' in CI."""
    import labtax.lint.engine

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the engine")

    monkeypatch.setattr(labtax.lint.engine, "lint", broken)
    cache = tmp_path / "cache"
    proc = run_labtax("lint", cwd=_taxonomy(tmp_path / "tax"), env={"LABTAX_CACHE_DIR": str(cache)})
    assert proc.returncode == 3, proc
    assert "labtax: internal error: RuntimeError: a bug in the engine" in proc.stderr
    assert "Traceback" not in proc.stderr and "report it" in proc.stderr
    (saved,) = (cache / "crashes").iterdir()
    assert str(saved) in proc.stderr
    text = saved.read_text()
    assert "Traceback" in text and "a bug in the engine" in text and "broken" in text
