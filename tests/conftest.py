"""Shared fixtures: paths to this checkout and to the team's shared corpus."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus" / "instructlab-taxonomy"


def run_labtax(*args, cwd=None, env=None, check=False, timeout=120):
    """Run the real `labtax` console script in a subprocess, as a user would."""
    exe = shutil.which("labtax", path=str(Path(os.sys.executable).parent)) or "labtax"
    merged = {**os.environ, **(env or {})}
    proc = subprocess.run([exe, *args], cwd=cwd, env=merged, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"labtax {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.fail(f"shared corpus missing at {CORPUS}: CI lays ../shared beside the clone")
    return CORPUS


@pytest.fixture(autouse=True)
def _not_in_ci(monkeypatch):
    """Tests decide themselves what runs: CI=true (set by CI) would turn on network-only checks (LT022)."""
    monkeypatch.delenv("CI", raising=False)
