"""`labtax diff` and `--changed` on real git repositories built in a temp dir, run through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from .conftest import run_labtax

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,  # the developer's own git settings must not change the answer
    "GIT_CONFIG_NOSYSTEM": "1",
}
CLEAN_ENV = {"GITHUB_BASE_REF": "", "GITHUB_ACTIONS": ""}


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, capture_output=True, text=True)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


def skill(n: int, version: int = 3) -> str:
    """A small valid skill leaf whose questions depend on n (so leaves never duplicate each other)."""
    examples = "".join(
        f"  - question: What is {n} plus {i}?\n    answer: {n} plus {i} is {n + i}.\n" for i in range(1, 6)
    )
    return f"version: {version}\ncreated_by: tester\ntask_description: Add small numbers to {n}.\nseed_examples:\n{examples}"


def knowledge(folder: str) -> str:
    qas = "".join(f"      - question: Question {j} about the topic?\n        answer: Answer {j}.\n" for j in range(3))
    examples = "".join(
        f"  - context: Context {i} from the document.\n    questions_and_answers:\n{qas}" for i in range(5)
    )
    return (
        "version: 3\ncreated_by: tester\ndomain: topic\ndocument_outline: An outline of the topic document.\n"
        f"seed_examples:\n{examples}document:\n  repo: ./{folder}\n  commit: HEAD\n  patterns:\n    - '*.md'\n"
    )


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def add_leaf(root: Path, folder: str, n: int, version: int = 3) -> str:
    write(root, f"{folder}/qna.yaml", skill(n, version))
    write(
        root,
        f"{folder}/attribution.txt",
        f"Title of work: leaf {n}\nLink to work: here\nLicense of the work: CC0\nCreator names: t\n",
    )
    return f"{folder}/qna.yaml"


def commit(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main with three leaves, then a `feature` branch checked out."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    add_leaf(root, "compositional_skills/writing/a", 1)
    add_leaf(root, "compositional_skills/writing/b", 2)
    add_leaf(root, "foundational_skills/math/c", 3, version=2)
    commit(root, "base")
    git(root, "switch", "-q", "-c", "feature")
    return root


def diff(root: Path, *args: str, env: dict | None = None) -> dict:
    proc = run_labtax("diff", "--format", "json", *args, cwd=root, env={**GIT_ENV, **CLEAN_ENV, **(env or {})})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def listed(report: dict) -> dict[str, str]:
    return {leaf["path"]: leaf["status"] for leaf in report["leaves"]}


def test_committed_add_modify_and_default_base(repo):
    add_leaf(repo, "compositional_skills/writing/new", 10)
    write(repo, "compositional_skills/writing/a/qna.yaml", skill(11))
    commit(repo, "change")
    report = diff(repo)
    assert listed(report) == {
        "compositional_skills/writing/a/qna.yaml": "modified",
        "compositional_skills/writing/new/qna.yaml": "added",
    }
    assert report["base"] == "main" and report["base_reason"] == "default branch"  # no remote at all
    assert report["merge_base"] == git(repo, "rev-parse", "main")
    added = next(leaf for leaf in report["leaves"] if leaf["status"] == "added")
    assert added["kind"] == "compositional" and added["version"] == 3 and added["valid"]


def test_rename_and_move_between_trees(repo):
    git(repo, "mv", "compositional_skills/writing/a", "compositional_skills/writing/renamed")
    git(repo, "mv", "compositional_skills/writing/b", "foundational_skills/math/b")
    commit(repo, "move")
    leaves = {leaf["path"]: leaf for leaf in diff(repo)["leaves"]}
    assert set(leaves) == {"compositional_skills/writing/renamed/qna.yaml", "foundational_skills/math/b/qna.yaml"}
    assert (
        leaves["compositional_skills/writing/renamed/qna.yaml"]["old_path"] == "compositional_skills/writing/a/qna.yaml"
    )
    moved = leaves["foundational_skills/math/b/qna.yaml"]
    assert (moved["status"], moved["old_path"], moved["kind"]) == (
        "renamed",
        "compositional_skills/writing/b/qna.yaml",
        "foundational",
    )


def test_delete_hidden_unless_asked(repo):
    git(repo, "rm", "-q", "-r", "foundational_skills/math/c")
    commit(repo, "delete")
    report = diff(repo)
    assert report["leaves"] == [] and report["counts"]["deleted"] == 1 and report["deleted_hidden"] == 1
    shown = diff(repo, "--include-deleted")["leaves"]
    assert [(leaf["path"], leaf["status"], leaf["kind"], leaf["version"]) for leaf in shown] == [
        ("foundational_skills/math/c/qna.yaml", "deleted", "foundational", 2)
    ]
    text = run_labtax("diff", "--include-deleted", cwd=repo, env=CLEAN_ENV).stdout
    assert "D foundational_skills/math/c/qna.yaml" in text


def test_working_tree_untracked_staged_and_unstaged(repo):
    add_leaf(repo, "compositional_skills/writing/untracked", 20)  # never added to git
    write(repo, "compositional_skills/writing/a/qna.yaml", skill(21))
    git(repo, "add", "compositional_skills/writing/a/qna.yaml")  # staged only
    write(repo, "compositional_skills/writing/b/qna.yaml", skill(22))  # unstaged
    assert listed(diff(repo)) == {
        "compositional_skills/writing/untracked/qna.yaml": "added",
        "compositional_skills/writing/a/qna.yaml": "modified",
        "compositional_skills/writing/b/qna.yaml": "modified",
    }
    assert git(repo, "status", "--porcelain").count("??") == 1  # the real index was not touched


def test_plain_mv_without_git_add_is_a_rename(repo):
    (repo / "foundational_skills/math/c").rename(repo / "foundational_skills/math/moved")
    leaves = diff(repo)["leaves"]
    assert [(leaf["path"], leaf["status"], leaf["old_path"]) for leaf in leaves] == [
        ("foundational_skills/math/moved/qna.yaml", "renamed", "foundational_skills/math/c/qna.yaml")
    ]


def test_net_change_only(repo):
    write(repo, "compositional_skills/writing/a/qna.yaml", skill(30))
    commit(repo, "edit")
    git(repo, "checkout", "main", "--", "compositional_skills/writing/a/qna.yaml")  # reverted, uncommitted
    assert diff(repo)["leaves"] == []


def test_base_branch_moves_on_with_merges_after_the_fork(repo):
    add_leaf(repo, "compositional_skills/writing/mine", 40)
    commit(repo, "feature work")
    git(repo, "switch", "-q", "main")
    add_leaf(repo, "compositional_skills/writing/on_main", 41)
    commit(repo, "main work")
    git(repo, "switch", "-q", "-c", "side")
    add_leaf(repo, "foundational_skills/math/side", 42)
    commit(repo, "side work")
    git(repo, "switch", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge side", "side")
    git(repo, "switch", "-q", "feature")
    # Leaves main gained after the fork are neither this branch's additions nor its deletions.
    assert listed(diff(repo, "--include-deleted")) == {"compositional_skills/writing/mine/qna.yaml": "added"}
    git(repo, "merge", "-q", "--no-edit", "main")  # the feature branch catches up with main
    assert listed(diff(repo, "--include-deleted")) == {"compositional_skills/writing/mine/qna.yaml": "added"}
    assert diff(repo)["merge_base"] == git(repo, "rev-parse", "main")


def test_detached_head(repo):
    add_leaf(repo, "compositional_skills/writing/detached", 50)
    sha = commit(repo, "work")
    git(repo, "checkout", "-q", "--detach", sha)
    report = diff(repo)
    assert report["branch"] is None and report["head"] == sha
    assert listed(report) == {"compositional_skills/writing/detached/qna.yaml": "added"}
    assert "detached HEAD" in run_labtax("diff", cwd=repo, env=CLEAN_ENV).stdout


def test_attribution_change_marks_its_leaf(repo):
    write(repo, "compositional_skills/writing/b/attribution.txt", "Title of work: new title\n")
    leaves = diff(repo)["leaves"]
    assert [(leaf["path"], leaf["status"]) for leaf in leaves] == [
        ("compositional_skills/writing/b/qna.yaml", "modified")
    ]
    assert "attribution.txt modified" in leaves[0]["reasons"]


def test_in_repo_document_change_marks_the_knowledge_leaf(repo):
    git(repo, "switch", "-q", "main")
    write(repo, "documents/topic/topic.md", "# Topic\nFirst version.\n")
    write(repo, "documents/other/other.md", "# Other\n")
    write(repo, "knowledge/science/topic/qna.yaml", knowledge("documents/topic"))
    commit(repo, "knowledge")
    git(repo, "switch", "-q", "feature")
    git(repo, "merge", "-q", "main")
    write(repo, "documents/topic/topic.md", "# Topic\nSecond version.\n")
    leaves = diff(repo)["leaves"]
    assert [(leaf["path"], leaf["status"], leaf["kind"]) for leaf in leaves] == [
        ("knowledge/science/topic/qna.yaml", "modified", "knowledge")
    ]
    assert leaves[0]["reasons"] == ["document documents/topic/topic.md modified"]
    git(repo, "checkout", "--", "documents/topic/topic.md")
    write(repo, "documents/other/other.md", "# Other, changed\n")  # no leaf reads it
    write(repo, "documents/topic/notes.txt", "not matched by '*.md'\n")
    assert diff(repo)["leaves"] == []


def test_invalid_changed_leaf_is_flagged_and_lint_fails(repo):
    write(repo, "compositional_skills/writing/a/qna.yaml", "version: 3\nseed_examples: [unclosed\n")
    report = diff(repo)
    assert report["invalid"] == 1 and not report["leaves"][0]["valid"]
    assert "syntax" in report["leaves"][0]["problems"][0].lower()
    assert "INVALID" in run_labtax("diff", cwd=repo, env=CLEAN_ENV).stdout
    linted = run_labtax("diff", "--lint", "--format", "json", cwd=repo, env=CLEAN_ENV)
    assert linted.returncode == 1, linted.stdout + linted.stderr
    findings = json.loads(linted.stdout)["lint"]["findings"]
    assert {f["path"] for f in findings} == {"compositional_skills/writing/a/qna.yaml"}
    # Loadable but failing a lint rule (schema: no task_description) also counts as invalid with --lint.
    write(
        repo,
        "compositional_skills/writing/a/qna.yaml",
        skill(60).replace("task_description: Add small numbers to 60.\n", ""),
    )
    assert diff(repo)["invalid"] == 0
    linted = json.loads(run_labtax("diff", "--lint", "--format", "json", cwd=repo, env=CLEAN_ENV).stdout)
    assert linted["invalid"] == 1 and linted["lint"]["errors"] >= 1


def test_lint_exit_code_follows_changed_leaves_only(repo):
    git(repo, "switch", "-q", "main")
    write(repo, "compositional_skills/writing/b/qna.yaml", "version: 3\n")  # broken, but not this branch's change
    commit(repo, "break b on main")
    git(repo, "switch", "-q", "feature")
    git(repo, "reset", "-q", "--hard", "main")
    add_leaf(repo, "compositional_skills/writing/good", 70)
    ok = run_labtax("diff", "--lint", cwd=repo, env=CLEAN_ENV)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    lint_changed = run_labtax("lint", "--changed", "--format", "json", cwd=repo, env=CLEAN_ENV)
    assert lint_changed.returncode == 0 and json.loads(lint_changed.stdout)["files"] == 1
    assert run_labtax("lint", "--format", "json", cwd=repo, env=CLEAN_ENV).returncode == 1  # the whole tree
    write(repo, "compositional_skills/writing/good/qna.yaml", "version: 3\n")
    assert run_labtax("diff", "--lint", cwd=repo, env=CLEAN_ENV).returncode == 1
    assert run_labtax("lint", "--base", "main", cwd=repo, env=CLEAN_ENV).returncode == 1


def test_base_empty_lists_every_leaf(repo):
    add_leaf(repo, "compositional_skills/writing/untracked", 80)
    report = diff(repo, "--base", "empty")
    assert report["merge_base"] is None
    assert set(listed(report).values()) == {"added"}
    assert set(listed(report)) == {
        "compositional_skills/writing/a/qna.yaml",
        "compositional_skills/writing/b/qna.yaml",
        "foundational_skills/math/c/qna.yaml",
        "compositional_skills/writing/untracked/qna.yaml",
    }


def test_paths_limit_the_list(repo):
    add_leaf(repo, "compositional_skills/writing/x", 90)
    add_leaf(repo, "foundational_skills/math/y", 91)
    assert listed(diff(repo, "foundational_skills")) == {"foundational_skills/math/y/qna.yaml": "added"}


def test_taxonomy_root_inside_a_larger_repository(tmp_path):
    top = tmp_path / "mono"
    root = top / "taxonomy"
    root.mkdir(parents=True)
    git(top, "init", "-q", "-b", "main")
    add_leaf(root, "compositional_skills/writing/a", 1)
    write(top, "src/code.py", "x = 1\n")
    commit(top, "base")
    git(top, "switch", "-q", "-c", "feature")
    add_leaf(root, "compositional_skills/writing/b", 2)
    write(top, "src/code.py", "x = 2\n")
    assert listed(diff(root)) == {"compositional_skills/writing/b/qna.yaml": "added"}
    assert listed(diff(top, "--root", str(root))) == {"compositional_skills/writing/b/qna.yaml": "added"}


@pytest.fixture
def origin(repo: Path) -> Path:
    """`repo` with main two commits long and a feature branch that adds one leaf, all committed."""
    git(repo, "switch", "-q", "main")
    add_leaf(repo, "compositional_skills/writing/second", 100)
    commit(repo, "second on main")
    git(repo, "switch", "-q", "feature")
    git(repo, "reset", "-q", "--hard", "main")
    add_leaf(repo, "compositional_skills/writing/feature", 101)
    commit(repo, "feature")
    git(repo, "switch", "-q", "main")
    add_leaf(repo, "compositional_skills/writing/third", 102)
    commit(repo, "third on main")
    return repo


def test_shallow_clone_is_refused_with_the_fix(origin, tmp_path):
    clone = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", "--branch", "feature", f"file://{origin}", str(clone))
    proc = run_labtax("diff", cwd=clone, env=CLEAN_ENV)
    assert proc.returncode == 2 and "shallow clone" in proc.stderr and "Traceback" not in proc.stderr
    assert "git fetch origin main:refs/remotes/origin/main" in proc.stderr and "fetch-depth: 0" in proc.stderr
    git(clone, "fetch", "-q", "--depth", "1", "origin", "main:refs/remotes/origin/main")
    proc = run_labtax("diff", "--base", "origin/main", cwd=clone, env=CLEAN_ENV)
    assert proc.returncode == 2 and "share no commit" in proc.stderr and "git fetch --unshallow" in proc.stderr
    git(clone, "fetch", "-q", "--unshallow", "origin")
    report = diff(clone, "--base", "origin/main")
    assert listed(report) == {"compositional_skills/writing/feature/qna.yaml": "added"} and report["shallow"] is False


def test_shallow_clone_that_contains_the_fork_point_works(origin, tmp_path):
    clone = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{origin}", str(clone))
    git(clone, "switch", "-q", "-c", "work")
    add_leaf(clone, "foundational_skills/math/new", 110)
    commit(clone, "work")
    report = diff(clone)
    assert report["shallow"] is True and report["base"] == "origin/main"
    assert listed(report) == {"foundational_skills/math/new/qna.yaml": "added"}


def test_github_base_ref_and_upstream(origin, tmp_path):
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", f"file://{origin}", str(clone))
    git(clone, "switch", "-q", "feature")  # tracks origin/feature: its own copy, not its base
    report = diff(clone)
    assert (report["base"], report["base_reason"]) == ("origin/main", "default branch")
    assert listed(report) == {"compositional_skills/writing/feature/qna.yaml": "added"}
    assert diff(clone, "--base", "feature")["base"] == "feature"  # a local branch is taken as named
    git(clone, "branch", "-q", "-D", "main")
    assert diff(clone, "--base", "main")["base"] == "origin/main"  # only the remote-tracking one exists
    report = diff(clone, env={"GITHUB_BASE_REF": "main"})
    assert (report["base"], report["base_reason"]) == ("origin/main", "$GITHUB_BASE_REF")
    git(clone, "switch", "-q", "-c", "topic", "--track", "origin/feature")
    assert diff(clone)["base"] == "origin/feature"  # an upstream under another name is the base
    missing = run_labtax("diff", cwd=clone, env={**CLEAN_ENV, "GITHUB_BASE_REF": "release"})
    assert missing.returncode == 2 and "git fetch --no-tags origin release" in missing.stderr


def test_errors_name_the_fix(repo, tmp_path):
    bad = run_labtax("diff", "--base", "no-such-branch", cwd=repo, env=CLEAN_ENV)
    assert bad.returncode == 2 and "no-such-branch" in bad.stderr and "Traceback" not in bad.stderr
    plain = tmp_path / "plain"
    add_leaf(plain, "compositional_skills/writing/a", 1)
    proc = run_labtax("diff", cwd=plain, env=CLEAN_ENV)
    assert proc.returncode == 2 and "not inside a git repository" in proc.stderr
    assert run_labtax("lint", "--changed", cwd=plain, env=CLEAN_ENV).returncode == 2
    every = diff(plain, "--base", "empty")  # every leaf needs no history
    assert (
        listed(every) == {"compositional_skills/writing/a/qna.yaml": "added"}
        and every["base_reason"] == "not a git repository"
    )
    assert run_labtax("lint", cwd=plain, env=CLEAN_ENV).returncode == 0  # without --changed git is not needed


def test_text_output_lists_status_kind_and_version(repo):
    git(repo, "mv", "compositional_skills/writing/a", "compositional_skills/writing/z")
    add_leaf(repo, "foundational_skills/math/new", 120, version=2)
    out = run_labtax("diff", cwd=repo, env=CLEAN_ENV).stdout.splitlines()
    assert out[0].startswith("base main (default branch), merge-base ")
    assert (
        "R compositional_skills/writing/a/qna.yaml -> compositional_skills/writing/z/qna.yaml  [compositional v3]"
        in out
    )
    assert "A foundational_skills/math/new/qna.yaml  [foundational v2]" in out
    assert out[-1] == "2 leaves changed (1 added, 1 renamed)"


def test_document_reference_forms_and_untracked_knowledge_leaf(repo):
    git(repo, "switch", "-q", "main")
    write(repo, "documents/topic/part/one.md", "# One\n")
    commit(repo, "document")
    git(repo, "switch", "-q", "feature")
    git(repo, "merge", "-q", "main")
    flow = (
        knowledge("documents/topic").split("document:\n")[0]
        + "document: {repo: './documents/topic/', commit: HEAD, patterns: ['**/*.md']}\n"
    )
    write(repo, "knowledge/flow/qna.yaml", flow)  # untracked, flow style, quoted path with a trailing slash
    commit(repo, "flow leaf")
    write(repo, "knowledge/block/qna.yaml", knowledge("documents/topic").replace("'*.md'", "'part/*.md'"))  # untracked
    write(repo, "documents/topic/part/one.md", "# One, edited\n")
    leaves = {leaf["path"]: leaf for leaf in diff(repo)["leaves"]}
    assert leaves["knowledge/flow/qna.yaml"]["status"] == "added"
    assert "document documents/topic/part/one.md modified" in leaves["knowledge/flow/qna.yaml"]["reasons"]
    assert leaves["knowledge/block/qna.yaml"]["reasons"][-1] == "document documents/topic/part/one.md modified"
    assert set(leaves) == {"knowledge/flow/qna.yaml", "knowledge/block/qna.yaml"}


def test_misnamed_changed_yaml_is_linted_with_changed(repo):
    write(repo, "compositional_skills/writing/oops/qna.yml", skill(130))
    proc = run_labtax("lint", "--changed", "--format", "json", cwd=repo, env=CLEAN_ENV)
    report = json.loads(proc.stdout)
    assert proc.returncode == 1 and {f["rule_id"] for f in report["findings"]} == {"LT012"}


def test_attribution_moved_between_leaves_marks_both(repo):
    git(repo, "switch", "-q", "main")
    write(repo, "compositional_skills/writing/d/qna.yaml", skill(140))  # a leaf without attribution on main
    commit(repo, "d")
    git(repo, "switch", "-q", "feature")
    git(repo, "merge", "-q", "main")
    git(repo, "mv", "compositional_skills/writing/a/attribution.txt", "compositional_skills/writing/d/attribution.txt")
    leaves = {leaf["path"]: leaf["reasons"] for leaf in diff(repo)["leaves"]}
    assert leaves == {
        "compositional_skills/writing/a/qna.yaml": [
            "attribution.txt moved to compositional_skills/writing/d/attribution.txt"
        ],
        "compositional_skills/writing/d/qna.yaml": [
            "attribution.txt renamed from compositional_skills/writing/a/attribution.txt"
        ],
    }
