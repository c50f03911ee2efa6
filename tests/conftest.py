"""Shared fixtures: paths to this checkout and to the team's shared corpus."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus" / "instructlab-taxonomy"


def run_labtax(*args, cwd=None, env=None, check=False, timeout=120, process=False):
    """Run `labtax` as a user would, and return what a subprocess run returns (returncode, stdout, stderr).

    By default in this process, through labtax.main.main (the console script's own entry: its exit codes,
    error handler and signal handling) inside click's CliRunner isolation (argv, environment, stdin, stdout,
    stderr), in `cwd`: a subprocess launch re-imports openai, torch or transformers and cost 1.5-2 s of the
    run's 0.1 s. `process=True` runs the installed console script in a real process, for what only a process
    boundary shows: signals, the interpreter's imports, a process's exit and its environment at start.
    """
    if process:
        exe = shutil.which("labtax", path=str(Path(os.sys.executable).parent)) or "labtax"
        merged = {**os.environ, **(env or {})}
        proc = subprocess.run([exe, *args], cwd=cwd, env=merged, capture_output=True, text=True, timeout=timeout)
    else:
        proc = _run_in_process([str(a) for a in args], cwd, env)
    if check and proc.returncode != 0:
        raise AssertionError(f"labtax {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def _run_in_process(args: list[str], cwd, env) -> subprocess.CompletedProcess:
    from click.testing import CliRunner

    from labtax.main import main

    with contextlib.chdir(cwd or os.getcwd()), CliRunner().isolation(env=env) as (out, err, _):
        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        sys.stdout.flush()  # what a command wrote with sys.stdout.write is still in the text buffer
        sys.stderr.flush()
        stdout, stderr = out.getvalue(), err.getvalue()
    return subprocess.CompletedProcess(["labtax", *args], code, stdout.decode(), stderr.decode(errors="replace"))


@pytest.fixture
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.fail(f"shared corpus missing at {CORPUS}: CI lays ../shared beside the clone")
    return CORPUS


@pytest.fixture(autouse=True)
def _not_in_ci(monkeypatch):
    """Tests decide themselves what runs: CI=true (set by CI) would turn on network-only checks (LT022)."""
    monkeypatch.delenv("CI", raising=False)
