"""The generate workflow's job, end to end: .github/scripts/pr-pipeline.sh in a temp repo whose pull
request branch adds one leaf, on the embedded teacher (no endpoint, as a fork's PR gets)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labtax.markdown import inline

from .conftest import REPO

BIN = Path(sys.executable).parent
SCRIPT = REPO / ".github" / "scripts" / "pr-pipeline.sh"
BASE_LEAF = "compositional_skills/writing/rewriting/plain_language"
NEW_LEAF = "foundational_skills/reasoning/unit_conversion"


def git(cwd, *args):
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True, timeout=60)


@pytest.fixture
def pr_repo(tmp_path):
    """main holds one leaf; the branch `pr` adds another (copied from this repository's taxonomy)."""
    repo = tmp_path / "taxonomy"
    shutil.copytree(REPO / BASE_LEAF, repo / BASE_LEAF)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "checkout", "-q", "-b", "pr")
    shutil.copytree(REPO / NEW_LEAF, repo / NEW_LEAF)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "add a leaf")
    return repo


def run_pipeline(repo, **settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "GITHUB_"))}
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "BASE_REF": "main",
            "OUTPUT": "generated",
            "COMMENT": "comment.md",
            "OPENAI_BASE_URL": "",
            "OPENAI_API_KEY": "",
            **settings,
        }
    )
    return subprocess.run(["bash", str(SCRIPT)], cwd=repo, env=env, capture_output=True, text=True, timeout=3000)


def test_pipeline_generates_for_exactly_the_changed_leaf_and_renders_the_comment(pr_repo, model_cache):
    proc = run_pipeline(pr_repo, NUM_SAMPLES="2", TRAIN_MAX_MINUTES="10")
    log = proc.stdout[-4000:] + proc.stderr[-6000:]
    assert proc.returncode == 0, log
    assert "teacher: embedded" in proc.stderr
    diff = json.loads((pr_repo / "generated" / "diff.json").read_text())
    assert [leaf["path"] for leaf in diff["leaves"]] == [f"{NEW_LEAF}/qna.yaml"]
    summary = json.loads((pr_repo / "generated" / "summary.json").read_text())
    assert list(summary["leaves"]) == [f"{NEW_LEAF}/qna.yaml"], summary["leaves"]
    assert (pr_repo / "generated" / "train" / "train_report.json").is_file()
    comment = (pr_repo / "comment.md").read_text()
    # Leaf paths are contributor text: the comment shows them escaped, as every reader of it does.
    assert inline(NEW_LEAF) in comment and inline(BASE_LEAF) not in comment


def test_pipeline_runs_from_the_base_checkout_on_the_pull_request_files(pr_repo, tmp_path):
    """The CI layout (generate.yml): the base commit's script in base/, run inside the pull request's
    checkout, writing outside it; a teacher endpoint (a fake on 127.0.0.1) and no training keep it fast."""
    from .fake_openai import FakeOpenAI

    script = tmp_path / "base" / ".github" / "scripts" / "pr-pipeline.sh"
    script.parent.mkdir(parents=True)
    shutil.copy(SCRIPT, script)
    with FakeOpenAI() as fake:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "GITHUB_", "LABTAX_"))}
        env.update(
            {
                "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                "BASE_REF": "main",
                "NUM_SAMPLES": "2",
                "TRAIN": "0",
                "OUTPUT": "../generated",
                "COMMENT": "../comment.md",
                "OPENAI_BASE_URL": fake.base_url,
                "OPENAI_API_KEY": "test-key",
                "LABTAX_TEACHER_MODEL": fake.model,
            }
        )
        proc = subprocess.run(
            ["bash", "../base/.github/scripts/pr-pipeline.sh"],
            cwd=pr_repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert proc.returncode == 0, proc.stderr[-6000:]
    assert "teacher: endpoint from OPENAI_BASE_URL" in proc.stderr
    summary = json.loads((tmp_path / "generated" / "summary.json").read_text())
    assert (
        list(summary["leaves"]) == [f"{NEW_LEAF}/qna.yaml"]
        and summary["leaves"][f"{NEW_LEAF}/qna.yaml"]["accepted"] == 2
    )
    assert inline(NEW_LEAF) in (tmp_path / "comment.md").read_text()
    # the pull request's checkout is only read: nothing written into it
    assert git(pr_repo, "status", "--porcelain", "--untracked-files=all").stdout == ""


def test_pipeline_with_no_changed_leaf_does_nothing_and_succeeds(pr_repo):
    """Fast path (no teacher, no torch): a branch that changes no leaf."""
    git(pr_repo, "checkout", "-q", "main")
    proc = run_pipeline(pr_repo, NUM_SAMPLES="2")
    assert proc.returncode == 0, proc.stderr
    assert "no leaf changed" in proc.stderr
    assert json.loads((pr_repo / "generated" / "diff.json").read_text())["leaves"] == []
    assert not (pr_repo / "generated" / "summary.json").exists() and not (pr_repo / "comment.md").exists()


@pytest.mark.parametrize(
    "settings,message",
    [
        ({"NUM_SAMPLES": "two"}, "NUM_SAMPLES='two' is not a positive integer"),
        ({"BASE_REF": ""}, "BASE_REF is empty"),
        ({"TRAIN": "yes"}, "TRAIN='yes' must be 0 or 1"),
        ({"LABTAX": "no-such-labtax"}, "'no-such-labtax' not found"),
    ],
)
def test_pipeline_rejects_bad_settings(pr_repo, settings, message):
    proc = run_pipeline(pr_repo, **settings)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not (pr_repo / "generated").exists()


def test_pipeline_fails_when_the_base_is_unknown(pr_repo):
    proc = run_pipeline(pr_repo, BASE_REF="origin/no-such-branch")
    assert proc.returncode != 0
    assert not (pr_repo / "comment.md").exists()
