"""What a pull request's files can do to labtax: links out of the repository, loops, FIFOs, devices,
endless document folders, odd bytes in names, other encodings. Each gives a located finding through the
real CLI, in a bounded time, and nothing outside the repository is read or sent to a teacher."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .conftest import run_labtax
from .test_diff import CLEAN_ENV, GIT_ENV, add_leaf, commit, git, knowledge, skill, write

ENV = {**GIT_ENV, **CLEAN_ENV, "PYTHONIOENCODING": "utf-8"}
SECRET = "TOP-SECRET-OUTSIDE-THE-REPOSITORY"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A valid leaf outside the repository, full of a marker that must never show up in any output."""
    folder = tmp_path / "outside"
    add_leaf(folder, "leaf", 7)
    (folder / "leaf" / "qna.yaml").write_text(skill(7).replace("Add small numbers", SECRET), encoding="utf-8")
    (folder / "secret.md").write_text(f"# {SECRET}\n", encoding="utf-8")
    return folder


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    add_leaf(root, "compositional_skills/writing/a", 1)
    commit(root, "base")
    git(root, "switch", "-q", "-c", "feature")
    return root


def lint(root: Path, *args: str, timeout: int = 60):
    proc = run_labtax("lint", "--format", "json", *args, cwd=root, env=ENV, timeout=timeout)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def found(report: dict) -> set[tuple[str, str]]:
    """(path, rule) of the errors; warnings (style advice) are not what these tests are about."""
    return {(f["path"], f["rule_id"]) for f in report["findings"] if f["level"] == "error"}


def planned(root: Path, *args: str) -> str:
    proc = run_labtax(
        "generate",
        "--dry-run",
        "--no-progress",
        "--base-url",
        "http://127.0.0.1:9/v1",
        *args,
        cwd=root,
        env=ENV,
        timeout=60,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout + proc.stderr


def test_a_folder_link_out_of_the_repository_is_never_read(repo, outside):
    (repo / "compositional_skills/linked").symlink_to(outside)
    code, report = lint(repo, "compositional_skills/linked/leaf/qna.yaml")
    assert code == 1 and found(report) == {("compositional_skills/linked/leaf/qna.yaml", "LT008")}
    code, report = lint(repo, "compositional_skills/linked")
    assert code == 1 and ("compositional_skills/linked/leaf/qna.yaml", "LT008") in found(report)
    output = planned(repo, "compositional_skills/linked/leaf/qna.yaml")
    assert "LT008" in output and SECRET not in output
    assert "compositional_skills/linked/leaf/qna.yaml: 0 requested" not in output


def test_a_tree_root_that_links_out_is_a_finding(tmp_path, outside):
    root = tmp_path / "repo"
    (root / "knowledge").mkdir(parents=True)
    (root / "compositional_skills").symlink_to(outside)
    code, report = lint(root)
    assert code == 1 and found(report) == {("compositional_skills/leaf/qna.yaml", "LT008")}
    assert SECRET not in json.dumps(report)


def test_a_leaf_linked_to_dev_zero_does_not_exhaust_memory(repo):
    leaf = repo / "compositional_skills/writing/zero/qna.yaml"
    leaf.parent.mkdir(parents=True)
    leaf.symlink_to("/dev/zero")
    write(repo, "documents/notes.md", "# notes\n")  # a non-leaf change: diff scans knowledge leaves for document users
    os.makedirs(repo / "knowledge/k", exist_ok=True)
    (repo / "knowledge/k/qna.yaml").symlink_to("/dev/zero")
    commit(repo, "links to /dev/zero")
    proc = run_labtax("diff", "--format", "json", cwd=repo, env=ENV, timeout=60)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    leaves = {leaf["path"]: leaf for leaf in json.loads(proc.stdout)["leaves"]}
    assert not leaves["compositional_skills/writing/zero/qna.yaml"]["valid"]
    assert "outside the repository" in leaves["compositional_skills/writing/zero/qna.yaml"]["problems"][0]
    code, report = lint(repo, "--changed")
    assert code == 1 and ("compositional_skills/writing/zero/qna.yaml", "LT008") in found(report)


def test_symlink_loops_are_located_findings(repo):
    (repo / "compositional_skills/writing/self").mkdir()
    (repo / "compositional_skills/writing/self/qna.yaml").symlink_to("qna.yaml")
    (repo / "compositional_skills/writing/pair").mkdir()
    (repo / "compositional_skills/writing/pair/qna.yaml").symlink_to("other.yaml")
    (repo / "compositional_skills/writing/pair/other.yaml").symlink_to("qna.yaml")
    code, report = lint(repo)
    by_path = {f["path"]: f for f in report["findings"] if f["rule_id"] == "LT021"}
    assert code == 1
    assert set(by_path) == {"compositional_skills/writing/self/qna.yaml", "compositional_skills/writing/pair/qna.yaml"}
    assert all("symlink loop" in f["message"] for f in by_path.values())


def test_a_fifo_is_refused_without_being_opened_for_reading(repo):
    fifo = repo / "compositional_skills/writing/fifo/qna.yaml"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    code, report = lint(repo, timeout=30)
    assert code == 1
    assert [f["message"] for f in report["findings"] if f["path"].startswith("compositional_skills/writing/fifo")] == [
        "not a regular file (a FIFO); only plain files are read"
    ]
    assert "LT021" in planned(repo)  # generate skips it with the finding, and does not hang


def test_an_attribution_fifo_or_device_is_not_read(repo):
    attribution = repo / "compositional_skills/writing/a/attribution.txt"
    attribution.unlink()
    os.mkfifo(attribution)
    code, report = lint(repo, timeout=30)
    assert code == 1 and found(report) == {("compositional_skills/writing/a/qna.yaml", "LT018")}
    assert "FIFO" in report["findings"][0]["message"]


def test_document_folder_links_cannot_make_lint_walk_forever_or_out(repo, outside):
    docs = repo / "documents/topic"
    docs.mkdir(parents=True)
    (docs / "topic.md").write_text("# Topic\n\nText.\n", encoding="utf-8")
    (docs / "loop").symlink_to(".")
    (docs / "rootfs").symlink_to("/")
    (docs / "leak.md").symlink_to(outside / "secret.md")
    (docs / "zero.md").symlink_to("/dev/zero")
    write(repo, "knowledge/science/topic/qna.yaml", knowledge("documents/topic").replace("'*.md'", "'**/*.md'"))
    write(repo, "knowledge/science/topic/attribution.txt", "Title of work: t\n")
    code, report = lint(repo, "knowledge", timeout=60)
    errors = [f for f in report["findings"] if f["level"] == "error"]
    messages = sorted(f["message"] for f in errors)
    assert code == 1
    assert [f["rule_id"] for f in errors] == ["LT017", "LT017"], messages
    assert "'leak.md' is not read: symlink points outside the repository" in messages[0]
    assert "'zero.md' is not read: symlink points outside the repository" in messages[1]
    assert SECRET not in json.dumps(report)


def test_a_document_link_inside_the_folder_is_read(repo):
    docs = repo / "documents/topic"
    docs.mkdir(parents=True)
    (docs / "real.md").write_text("# Topic\n\nText.\n", encoding="utf-8")
    (docs / "alias.md").symlink_to("real.md")
    write(repo, "knowledge/science/topic/qna.yaml", knowledge("documents/topic"))
    write(repo, "knowledge/science/topic/attribution.txt", "Title of work: t\n")
    code, report = lint(repo, "knowledge")
    assert code == 0 and report["errors"] == 0


def test_odd_bytes_and_newlines_in_paths_are_escaped_in_every_reporter(repo):
    for name in (b"bad\xff", b"two\nlines"):
        folder = os.path.join(os.fsencode(repo), b"compositional_skills", b"writing", name)
        os.makedirs(folder)
        with open(os.path.join(folder, b"qna.yaml"), "wb") as handle:
            handle.write(b"version: 3\n")
    for fmt in ("text", "github", "json"):
        proc = run_labtax("lint", "--format", fmt, cwd=repo, env=ENV, timeout=60)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        if fmt == "json":
            paths = {f["path"] for f in json.loads(proc.stdout)["findings"]}
            assert {
                "compositional_skills/writing/bad\\xff/qna.yaml",
                "compositional_skills/writing/two\\nlines/qna.yaml",
            } <= paths
        else:
            assert "bad\\xff" in proc.stdout and "two\\nlines" in proc.stdout, (
                proc.stdout
            )  # one finding per line: a newline in a path never starts a new one
            lines = [line for line in proc.stdout.splitlines() if "LT001" in line]
            assert len(lines) == 6 and all(
                line.startswith(("compositional_skills/", "::error file=compositional_skills/")) for line in lines
            )
    commit(repo, "odd names")
    proc = run_labtax("diff", cwd=repo, env=ENV, timeout=60)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "bad\\xff" in proc.stdout and "two\\nlines" in proc.stdout


def test_utf16_is_an_encoding_finding_that_names_the_encoding(repo):
    leaf = repo / "compositional_skills/writing/a/qna.yaml"
    leaf.write_bytes(b"\xff\xfe" + skill(1).encode("utf-16-le"))
    code, report = lint(repo)
    assert code == 1 and found(report) == {("compositional_skills/writing/a/qna.yaml", "LT005")}
    assert "UTF-16 LE" in report["findings"][0]["message"]


@pytest.mark.parametrize("name", [".yamllint.yaml", ".labtax.toml"])
def test_settings_files_are_read_through_the_same_guard(repo, name):
    (repo / name).symlink_to("/dev/zero")
    proc = run_labtax("lint", cwd=repo, env=ENV, timeout=30)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"cannot read {name}" in proc.stderr or f"from {name}" in proc.stderr
    assert "symlink points outside the repository (to /dev/zero)" in proc.stderr
    (repo / name).unlink()
    os.mkfifo(repo / name)
    proc = run_labtax("lint", cwd=repo, env=ENV, timeout=30)
    assert proc.returncode == 2 and "not a regular file (a FIFO)" in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ("extends: /etc/passwd\n", "extends: '/etc/passwd' is not one of yamllint's built-in configs"),
        ("extends: ../outside.yaml\n", "extends: '../outside.yaml' is not one of yamllint's built-in configs"),
        ("ignore-from-file: /etc/passwd\n", "ignore-from-file names files yamllint would read"),
    ],
)
def test_a_yamllint_config_cannot_make_lint_read_outside_the_repository(repo, tmp_path, config, says):
    """yamllint opens `extends` paths and `ignore-from-file` lists from the working folder: a pull request's
    .yamllint.yaml could point them anywhere. Refused before yamllint reads anything; built-ins still work."""
    outside = repo.parent / "outside.yaml"
    outside.write_text("secret-marker: 1\n")
    (repo / ".yamllint.yaml").write_text(config)
    proc = run_labtax("lint", cwd=repo, env=ENV, timeout=30)
    assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert "secret-marker" not in proc.stdout + proc.stderr and "root:" not in proc.stdout + proc.stderr
    (repo / ".yamllint.yaml").write_text("extends: relaxed\nrules:\n  line-length:\n    max: 120\n")
    proc = run_labtax("lint", cwd=repo, env=ENV, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ("extends: /etc/passwd\n", "extends: '/etc/passwd' is not one of yamllint's built-in configs"),
        ("extends: ../outside.yaml\n", "extends: '../outside.yaml' is not one of yamllint's built-in configs"),
        ("ignore-from-file: /etc/passwd\n", "ignore-from-file names files yamllint would read"),
    ],
)
def test_an_inline_yamllint_config_gets_the_same_guard(repo, config, says):
    """`[tool.labtax.rules.LT011] config` in .labtax.toml is the repository's yamllint config too: the same
    refusal as .yamllint.yaml (`extends: /dev/zero` read until memory ran out), named by where it is."""
    (repo.parent / "outside.yaml").write_text("secret-marker: 1\n")
    (repo / ".labtax.toml").write_text(f"[rules.LT011]\nconfig = {json.dumps(config)}\n")
    proc = run_labtax("lint", cwd=repo, env=ENV, timeout=30)
    assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert "[tool.labtax.rules.LT011] config" in proc.stderr and ".labtax.toml" in proc.stderr, proc.stderr
    assert "secret-marker" not in proc.stdout + proc.stderr
    (repo / ".labtax.toml").write_text('[rules.LT011]\nconfig = "extends: relaxed\\n"\n')
    assert run_labtax("lint", cwd=repo, env=ENV, timeout=30).returncode == 0
    (repo / ".labtax.toml").write_text('[rules.LT011]\nconfig = "rules: {line-length: {max: nope}}\\n"\n')
    proc = run_labtax("lint", cwd=repo, env=ENV, timeout=30)
    assert proc.returncode == 2 and "fix the yamllint configuration" in proc.stderr, proc.stderr


def _alias_bomb(levels: int = 5) -> str:
    """A leaf whose aliases expand to about 2 * 10**levels nodes (small: a few MB of memory)."""
    lines = ["version: 3", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    lines.append(f"bomb: [*a{levels - 1}, *a{levels - 1}]")
    return "\n".join(lines) + "\n"


def test_the_repository_cannot_raise_the_resource_limits_past_labtax_ceilings(repo):
    """max-nodes / max-file-bytes come from the linted repository: a pull request raised them and then
    linted an alias bomb. Past labtax's ceilings they are refused (exit 2, naming the fix); only the user,
    outside the repository, raises a ceiling (LABTAX_MAX_NODES / LABTAX_MAX_FILE_BYTES)."""
    write(repo, "compositional_skills/writing/bomb/qna.yaml", _alias_bomb())
    _, report = lint(repo)
    assert ("compositional_skills/writing/bomb/qna.yaml", "LT004") in found(report)
    for setting, variable in (
        ("max-nodes = 2000000", "LABTAX_MAX_NODES"),
        ("max-file-bytes = 1073741824", "LABTAX_MAX_FILE_BYTES"),
    ):
        (repo / ".labtax.toml").write_text(setting + "\n")
        proc = run_labtax("lint", cwd=repo, env=ENV, timeout=30)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
        assert f"{setting} in .labtax.toml is over the ceiling" in proc.stderr and f"{variable}=" in proc.stderr, (
            proc.stderr
        )
    (repo / ".labtax.toml").write_text("max-nodes = 2000000\n")
    proc = run_labtax("lint", "--format", "json", cwd=repo, env={**ENV, "LABTAX_MAX_NODES": "2000000"}, timeout=60)
    assert proc.returncode in (0, 1) and ("compositional_skills/writing/bomb/qna.yaml", "LT004") not in found(
        json.loads(proc.stdout)
    ), proc.stderr
    (repo / ".labtax.toml").write_text("max-nodes = 500000\nmax-file-bytes = 2097152\n")  # under the ceilings
    assert lint(repo)[0] in (0, 1)
    for bad in ('max-nodes = "lots"', "max-file-bytes = -1", "max-nodes = true"):
        (repo / ".labtax.toml").write_text(bad + "\n")
        proc = run_labtax("lint", cwd=repo, env=ENV, timeout=30)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr and "positive whole number" in proc.stderr, (
            bad,
            proc.stderr,
        )
    (repo / ".labtax.toml").write_text("max-nodes = 500000\n")
    proc = run_labtax("lint", cwd=repo, env={**ENV, "LABTAX_MAX_NODES": "many"}, timeout=30)
    assert proc.returncode == 2 and "LABTAX_MAX_NODES" in proc.stderr, proc.stderr


def test_eight_double_stars_over_a_deep_document_folder_lint_at_once(repo):
    """`**` was matched by trying every split of the path among them: eight over a 30-deep folder hung the
    offline lint (pre-commit, CI). A real process with a generous bound; the match itself takes milliseconds."""
    deep = repo / "documents/topic" / "/".join(["d"] * 30)
    deep.mkdir(parents=True)
    (deep / "found.md").write_text("# Topic\n\nText.\n", encoding="utf-8")
    (deep / "skipped.txt").write_text("not matched\n", encoding="utf-8")
    pattern = "/".join(["**"] * 8) + "/*.md"
    write(repo, "knowledge/science/topic/qna.yaml", knowledge("documents/topic").replace("'*.md'", f"'{pattern}'"))
    write(repo, "knowledge/science/topic/attribution.txt", "Title of work: t\n")
    proc = run_labtax("lint", "--format", "json", "knowledge", cwd=repo, env=ENV, timeout=60, process=True)
    assert proc.returncode == 0 and json.loads(proc.stdout)["errors"] == 0, proc.stdout + proc.stderr


def test_wrong_typed_settings_are_exit_2_with_located_errors_never_a_traceback(repo):
    """#24 item 19: seven keys crashed lint with a traceback; "no" was read as true."""
    for setting in ('profile = ["x"]', "select = 5", "ignore = 5", "rules = 5", "rules = {LT011 = 5}", "teacher = 5"):
        (repo / ".labtax.toml").write_text(setting + "\n")
        proc = run_labtax("lint", cwd=repo, env=ENV, timeout=30)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr and "internal error" not in proc.stderr
        assert ".labtax.toml:1" in proc.stderr, (setting, proc.stderr)
    (repo / ".labtax.toml").write_text('changed-files = 5\nduplicate-keys-fatal = "no"\n')
    proc = run_labtax("lint", cwd=repo, env=ENV, timeout=30)
    assert proc.returncode == 2 and ".labtax.toml:1" in proc.stderr and ".labtax.toml:2" in proc.stderr, proc.stderr
