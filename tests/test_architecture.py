"""The layering rules hold for every import in the code (import-linter contracts in pyproject.toml), those
under `if TYPE_CHECKING:` included, and they are real: one forbidden import added to a copy of the package
breaks the contract it should, and each contract is shown to bite."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(source_root: Path, config: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(source_root)}
    return subprocess.run(
        [str(LINT_IMPORTS), str(config), "--no-cache"],
        cwd=config.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_layering_contracts_are_kept():
    proc = lint_imports(REPO / "cli", REPO / "pyproject.toml")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "BROKEN" not in proc.stdout and "Contracts: 8 kept, 0 broken." in proc.stdout


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


STAGES = "labtax's stages, highest first"
ROOMS = "generate's rooms, highest first"
CIRCLES = "No circles between sibling packages or modules, at any depth"
TYPE_ONLY = "\n\nfrom typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    {}  # noqa: F401\n"
LAZY = "\n\ndef _sneaky():\n    {}  # noqa: F401\n"

# (file in the package, what is appended to it, the contract that must break, the import it must name)
BITES = [
    # The taxonomy is below changes: the circle issue #25 removed, named for the type checker only.
    ("taxonomy/paths.py", TYPE_ONLY.format("from labtax.changes.leaves import LeafChange"), STAGES,
     "labtax.taxonomy.paths -> labtax.changes.leaves"),
    # Siblings in one layer import each other not at all: training never imports the comment.
    ("train/report.py", LAZY.format("from labtax.comment import render"), STAGES,
     "labtax.train.report -> labtax.comment.render"),
    # Nor generation the scale-out layer above it.
    ("generate/run.py", LAZY.format("from labtax.scale import merge"), STAGES,
     "labtax.generate.run -> labtax.scale.merge"),
    # A new package must be given its layer (exhaustive).
    ("newstage/__init__.py", "", STAGES, "labtax.newstage"),
    # The other circle issue #25 removed: the pipelines' own job type back in the orchestrator.
    ("generate/pipelines/__init__.py", TYPE_ONLY.format("from labtax.generate.run import Settings"), ROOMS,
     "labtax.generate.pipelines -> labtax.generate.run"),
    ("generate/gate/checks.py", LAZY.format("from labtax.generate.pipelines import common"), ROOMS,
     "labtax.generate.gate.checks -> labtax.generate.pipelines.common"),
    # A circle inside a package no layers contract covers, seen only by the type checker.
    ("comment/inputs.py", TYPE_ONLY.format("from labtax.comment.render import render_comment"), CIRCLES,
     "No cycles are allowed in labtax.comment."),
    ("commands/lint.py", LAZY.format("from labtax.commands import generate"), "Commands import no other command",
     "labtax.commands.lint -> labtax.commands.generate"),
    ("lint/rules/lt009_empty_file.py", LAZY.format("from labtax.lint.report import render"),
     "Rules never import reporters", "labtax.lint.rules.lt009_empty_file -> labtax.lint.report"),
    ("generate/pipelines/common.py", LAZY.format("from labtax.teacher import openai_backend"),
     "Pipelines see only the teacher protocol", "labtax.generate.pipelines.common -> labtax.teacher.openai_backend"),
    ("mix/recipe.py", LAZY.format("import torch"), "the mixer no model library", "labtax.mix.recipe -> torch"),
    ("scale/merge.py", LAZY.format("import ray"), "Only the Ray executor imports ray", "labtax.scale.merge -> ray"),
]  # fmt: skip


@pytest.mark.parametrize(("target", "added", "contract", "named"), BITES, ids=[b[0] + ":" + b[2][:12] for b in BITES])
def test_each_contract_bites(tmp_path, target, added, contract, named):
    copy = tmp_path / "cli"
    shutil.copytree(REPO / "cli", copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    module = copy / "labtax" / target
    module.parent.mkdir(parents=True, exist_ok=True)
    module.write_text((module.read_text() if module.exists() else "") + added)
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    proc = lint_imports(copy, tmp_path / "pyproject.toml")
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert any(contract in name for name in broken_contracts(proc.stdout)), proc.stdout[-3000:]
    assert named in proc.stdout, proc.stdout[-3000:]


def broken_contracts(stdout: str) -> list[str]:
    """The names of the contracts lint-imports reports BROKEN (its summary wraps long names over lines)."""
    summary = stdout.split("Contracts\n---------", 1)[-1].split("\nContracts: ", 1)[0]
    summary = re.sub(r"^Analyzed .*$|^-+$", "", summary, flags=re.M)
    verdicts = re.findall(r"\s*(.+?) (KEPT|BROKEN)(?: \(\d+ ignored imports?\))?(?= |$)", " ".join(summary.split()))
    return [name for name, verdict in verdicts if verdict == "BROKEN"]


def test_the_contracts_count_type_checking_imports():
    text = (REPO / "pyproject.toml").read_text()
    assert "exclude_type_checking_imports = false" in text and "exclude_type_checking_imports = true" not in text
