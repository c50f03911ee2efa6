"""`labtax new` never writes outside the taxonomy or where the tree would not find the leaf."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .conftest import run_labtax


def refused(root: Path, *args: str) -> str:
    proc = run_labtax("new", *args, "--root", str(root))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    return proc.stderr


def test_an_absolute_path_is_refused_and_nothing_is_created(tmp_path):
    root = tmp_path / "taxonomy"
    root.mkdir()
    assert "is absolute" in refused(root, "compositional", str(tmp_path / "elsewhere" / "leaf"))
    assert list(root.rglob("*")) == []


def test_a_leaf_above_an_existing_leaf_is_refused(tmp_path):
    run_labtax("new", "compositional", "writing/poetry/haiku", "--root", str(tmp_path), check=True)
    message = refused(tmp_path, "compositional", "writing/poetry")
    assert "compositional_skills/writing/poetry/haiku is a leaf inside compositional_skills/writing/poetry" in message
    assert not (tmp_path / "compositional_skills/writing/poetry/qna.yaml").exists()


def test_creating_through_a_symlinked_folder_is_refused(tmp_path):
    root, outside = tmp_path / "taxonomy", tmp_path / "outside"
    (root / "compositional_skills").mkdir(parents=True)
    outside.mkdir()
    (root / "compositional_skills" / "writing").symlink_to(outside)
    assert "compositional_skills/writing is a symlink" in refused(root, "compositional", "writing/poetry/haiku")
    assert list(outside.rglob("*")) == []


def test_new_offers_the_gitignore_line_until_generate_output_is_ignored(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    proc = run_labtax("new", "compositional", "writing/haiku", "--root", str(tmp_path), check=True)
    offered = [line.strip() for line in proc.stdout.splitlines() if ".gitignore" in line and "echo" in line]
    assert offered == ["echo 'generated/' >> .gitignore"], proc.stdout
    subprocess.run(["bash", "-c", offered[0]], cwd=tmp_path, check=True)  # as printed
    (tmp_path / "generated" / ".cache").mkdir(parents=True)
    (tmp_path / "generated" / "summary.json").write_text("{}")
    (tmp_path / "generated" / ".cache" / "call.json").write_text("{}")
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], cwd=tmp_path, capture_output=True, text=True
    ).stdout
    assert "generated" not in status and "compositional_skills/writing/haiku/qna.yaml" in status
    again = run_labtax("new", "compositional", "writing/limerick", "--root", str(tmp_path), check=True)
    assert ".gitignore" not in again.stdout  # said once, until it is done
