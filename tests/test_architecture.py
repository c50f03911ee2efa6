"""The layering rules hold for every import in the code (import-linter contracts in pyproject.toml), and
they are real: a forbidden import added to a copy of the package breaks the build."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import REPO

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(source_root: Path, config: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(source_root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(config), "--no-cache"],
        cwd=config.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_layering_contracts_are_kept():
    proc = lint_imports(REPO / "cli", REPO / "pyproject.toml")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "BROKEN" not in proc.stdout and "Contracts: 9 kept, 0 broken." in proc.stdout


def test_a_rule_that_imports_the_teacher_breaks_the_contracts(tmp_path):
    copy = tmp_path / "cli"
    shutil.copytree(REPO / "cli", copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    rule = copy / "labtax/lint/rules/lt009_empty_file.py"
    rule.write_text(rule.read_text() + "\n\ndef _sneaky():\n    from labtax.teacher import resolve  # noqa: F401\n")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    proc = lint_imports(copy, tmp_path / "pyproject.toml")
    assert (
        proc.returncode == 1 and "The lint path never imports later stages or the heavy libraries BROKEN" in proc.stdout
    )
    assert "labtax.lint.rules.lt009_empty_file -> labtax.teacher" in proc.stdout
