"""labtax as users get it: a built wheel and sdist installed elsewhere, and the published pre-commit hook
run the way a taxonomy repository runs it (pre-commit builds its own environment from the package).

The editable install the other tests use reads schema/ straight from the checkout, so only these tests
can see a package that ships without its data.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from .conftest import REPO
from .test_diff import GIT_ENV, add_leaf, git

LEAF = "compositional_skills/writing/a/qna.yaml"
BAD = "compositional_skills/writing/bad/qna.yaml"
OUTSIDE_LINK = "compositional_skills/writing/linked/qna.yaml"


def run(*args, cwd=None, env=None, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_package_list_names_every_package_of_the_source_tree():
    """pyproject lists packages by hand (schema/ is mapped in, which packages.find cannot see): keep it whole."""
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    source = REPO / "cli"
    found = {p.parent.relative_to(source).as_posix().replace("/", ".") for p in source.glob("labtax/**/__init__.py")}
    assert listed == found | {"labtax.schemas"}


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """This working tree (committed or not, ignored files left out) as a repository of its own at HEAD,
    so the hook is built from exactly what is being tested."""
    copy = tmp_path_factory.mktemp("labtax-src")
    files = run("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=REPO).stdout.split("\0")
    for rel in filter(None, files):
        source = REPO / rel
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree
        target = copy / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            target.write_bytes(source.read_bytes())
    git(copy, "init", "-q", "-b", "main")
    git(copy, "add", "-A")
    git(copy, "commit", "-q", "-m", "labtax under test")
    return copy


@pytest.fixture(scope="module")
def dist(checkout, tmp_path_factory) -> Path:
    """`python -m build`: the sdist, then the wheel built from that sdist (what pip does with an sdist)."""
    out = tmp_path_factory.mktemp("dist")
    proc = run(sys.executable, "-m", "build", "--outdir", out, checkout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


@pytest.mark.install
def test_wheel_and_sdist_carry_the_schemas_of_schema_folder(dist):
    expected = {p.relative_to(REPO / "schema").as_posix(): p.read_bytes() for p in (REPO / "schema").rglob("*.json")}
    assert len(expected) == 15  # 9 leaf schemas (v1-v3 x 3 trees), 5 record schemas (v1 x 4, v2 sample), settings
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {
            n.removeprefix("labtax/schemas/"): archive.read(n)
            for n in archive.namelist()
            if n.startswith("labtax/schemas/") and n.endswith(".json")
        }
    assert shipped == expected
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    assert {f"schema/{rel}" for rel in expected} <= names


@pytest.fixture(scope="module")
def taxonomy(tmp_path_factory) -> Path:
    """A different taxonomy repository: one valid leaf, one invalid, one link to a file outside."""
    root = tmp_path_factory.mktemp("taxonomy")
    git(root, "init", "-q", "-b", "main")
    add_leaf(root, "compositional_skills/writing/a", 1)
    add_leaf(root, "compositional_skills/writing/bad", 2)
    (root / BAD).write_text((root / BAD).read_text().replace("task_description:", "task_descripton:"))
    (root / OUTSIDE_LINK).parent.mkdir(parents=True)
    (root / OUTSIDE_LINK).symlink_to(REPO / "compositional_skills/extraction/meeting_notes/action_items/qna.yaml")
    (root / ".yamllint.yaml").write_text((REPO / ".yamllint.yaml").read_text())
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "leaves")
    return root


@pytest.mark.install
def test_the_wheel_installed_in_a_fresh_venv_lints_from_another_folder(dist, taxonomy, tmp_path):
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", venv).returncode == 0
    (wheel,) = dist.glob("*.whl")
    proc = run(venv / "bin/python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel)
    assert proc.returncode == 0, proc.stderr[-3000:]
    good = run(venv / "bin/labtax", "lint", LEAF, cwd=taxonomy)
    assert good.returncode == 0 and "0 errors, 0 warnings in 1 file" in good.stdout, good.stdout + good.stderr
    bad = run(venv / "bin/labtax", "lint", BAD, cwd=taxonomy)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"{BAD}:1:1: error LT001 missing required field 'task_description'" in bad.stdout
    assert f"{BAD}:3:1: error LT001 unexpected field 'task_descripton'" in bad.stdout
    # The core install is what the hook gets: nothing generation or training needs, and a clear way to add it.
    for heavy in ("openai", "torch", "transformers", "rapidfuzz", "pre_commit"):
        probe = run(
            venv / "bin/python",
            "-c",
            f"import importlib.util, sys; sys.exit(importlib.util.find_spec('{heavy}') is not None)",
        )
        assert probe.returncode == 0, f"{heavy} is installed by the core package"
    generate = run(venv / "bin/labtax", "generate", "--dry-run", cwd=taxonomy)
    assert generate.returncode == 2 and "pip install 'labtax[generate]'" in generate.stderr, (
        generate.stdout + generate.stderr
    )


def pre_commit(*args, cwd, home) -> subprocess.CompletedProcess:
    return run(
        Path(sys.executable).parent / "pre-commit",
        *args,
        cwd=cwd,
        env={"PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"},
    )


@pytest.mark.install
def test_the_published_hook_through_try_repo(checkout, taxonomy, tmp_path):
    home = tmp_path / "pre-commit-home"
    good = pre_commit("try-repo", checkout, "labtax-lint", "--files", LEAF, cwd=taxonomy, home=home)
    assert good.returncode == 0 and "labtax lint" in good.stdout and "Passed" in good.stdout, good.stdout + good.stderr
    bad = pre_commit("try-repo", checkout, "labtax-lint", "--files", BAD, cwd=taxonomy, home=home)
    assert bad.returncode == 1 and f"{BAD}:1:1: error LT001" in bad.stdout, bad.stdout + bad.stderr


@pytest.mark.install
def test_the_published_hook_at_a_pinned_rev_and_on_a_symlinked_leaf(checkout, taxonomy, tmp_path):
    home = tmp_path / "pre-commit-home"
    (taxonomy / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {checkout}\n    rev: HEAD\n    hooks:\n      - id: labtax-lint\n"
    )
    good = pre_commit("run", "--files", LEAF, cwd=taxonomy, home=home)
    assert good.returncode == 0 and "Passed" in good.stdout, good.stdout + good.stderr
    bad = pre_commit("run", "--files", BAD, cwd=taxonomy, home=home)
    assert bad.returncode == 1 and f"{BAD}:1:1: error LT001" in bad.stdout, bad.stdout + bad.stderr
    # A leaf turned into a link to a file outside the repository: the hook must run on it, and refuse it.
    linked = pre_commit("run", "--files", OUTSIDE_LINK, cwd=taxonomy, home=home)
    assert (
        linked.returncode == 1
        and f"{OUTSIDE_LINK}:1:1: error LT008 symlink points outside the repository" in linked.stdout
    ), linked.stdout + linked.stderr
