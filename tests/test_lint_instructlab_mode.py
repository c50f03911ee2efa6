"""`--profile instructlab` as InstructLab's CI runs it on a pull request, and inputs real contributors write
(Windows line endings, YAML merge keys, unclosed quotes), through the real CLI on real git repositories."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from .conftest import CORPUS, run_labtax
from .test_diff import CLEAN_ENV, GIT_ENV, commit, git

ENV = {**GIT_ENV, **CLEAN_ENV}
V1_SKILL = """\
created_by: alice
task_description: Write a short haiku about a topic.
seed_examples:
  - question: Write a haiku about rain.
    answer: Soft rain on the roof, a quiet drum at midnight.
  - question: Write a haiku about snow.
    answer: White hush on the street, footprints fill before morning.
  - question: Write a haiku about wind.
    answer: The wind bends the grass, a whisper runs through the field.
"""


def lint(root: Path, *args: str) -> tuple[int, dict]:
    proc = run_labtax("lint", "--format", "json", *args, cwd=root, env=ENV)
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def errors(report: dict) -> list[tuple[str, int, int]]:
    return [(f["rule_id"], f["line"], f["col"]) for f in report["findings"] if f["level"] == "error"]


def test_changed_files_meet_the_latest_schema_as_in_instructlab_ci(tmp_path):
    root = tmp_path / "taxonomy"
    leaf = root / "compositional_skills/writing/haiku/qna.yaml"
    leaf.parent.mkdir(parents=True)
    leaf.write_text(V1_SKILL)
    git(root, "init", "-q", "-b", "main")
    commit(root, "a version-1 leaf")
    assert lint(root, "--profile", "instructlab") == (0, {"files": 1, "errors": 0, "warnings": 0, "findings": []})
    git(root, "switch", "-q", "-c", "edit")
    leaf.write_text(V1_SKILL.replace("a topic", "a topic the user names"))
    commit(root, "edit it")
    code, report = lint(root, "--profile", "instructlab", "--changed", "--base", "main")
    # Version 3 asks for `version`, and for five seed examples: InstructLab's CI fails the edited file.
    assert code == 1 and {"LT001"} == {rule for rule, _, _ in errors(report)}
    assert any("needs at least 5 items" in f["message"] for f in report["findings"])
    code, report = lint(root, "--profile", "instructlab", "--changed", "--taxonomy-base", "main")  # InstructLab's name
    assert code == 1 and errors(report)
    assert lint(root, "--profile", "instructlab", "compositional_skills")[0] == 0  # not as a change: its own version


def test_windows_line_endings_pass_as_in_instructlab(tmp_path):
    source = CORPUS / "head/compositional_skills/linguistics/synonyms/qna.yaml"
    leaf = tmp_path / "compositional_skills/linguistics/synonyms/qna.yaml"
    leaf.parent.mkdir(parents=True)
    leaf.write_bytes(source.read_bytes().replace(b"\n", b"\r\n"))
    (leaf.parent / "attribution.txt").write_text("Title of work: synonyms\n")
    assert lint(tmp_path, "--profile", "instructlab")[0] == 0
    code, report = lint(tmp_path)
    assert code == 0 and {f["message"] for f in report["findings"]} <= {
        "wrong new line character: expected \\n [new-lines]"
    }


def test_merge_keys_load_as_yaml_safe_load_reads_them(tmp_path):
    text = "version: 3\ncreated_by: alice\ntask_description: Write a short haiku about a topic.\nseed_examples:\n"
    text += "  - &first\n    question: Write a haiku about rain.\n    answer: Soft rain on the roof, a quiet drum at midnight.\n"
    for topic in ("snow", "wind", "sun", "fog"):
        text += f"  - <<: *first\n    question: Write a haiku about {topic}.\n"
    leaf = tmp_path / "compositional_skills/writing/haiku/qna.yaml"
    leaf.parent.mkdir(parents=True)
    leaf.write_text(text)
    (leaf.parent / "attribution.txt").write_text("Title of work: haiku\n")
    for profile in ("instructlab", "default"):
        code, report = lint(tmp_path, "--profile", profile)
        assert code == 0 and not [f for f in report["findings"] if f["rule_id"] == "LT002"], report
    proc = run_labtax(
        "generate", "--dry-run", "--no-progress", "--base-url", "http://127.0.0.1:9/v1", cwd=tmp_path, env=ENV
    )
    assert proc.returncode == 0 and "compositional_skills/writing/haiku/qna.yaml: compositional" in proc.stdout, (
        proc.stdout + proc.stderr
    )
    assert len(yaml.safe_load(text)["seed_examples"]) == 5


def test_an_unclosed_quote_points_where_it_opens(tmp_path):
    leaf = tmp_path / "compositional_skills/writing/haiku/qna.yaml"
    leaf.parent.mkdir(parents=True)
    leaf.write_text(
        'version: 3\ncreated_by: alice\ntask_description: "Write a short haiku.\nseed_examples:\n  - question: a\n    answer: b\n'
    )
    code, report = lint(tmp_path)
    (finding,) = [f for f in report["findings"] if f["rule_id"] == "LT002"]
    assert code == 1 and (finding["line"], finding["col"]) == (3, 19)
    assert "it breaks at line 7, col 1" in finding["message"]


def test_yaml_rules_replaces_the_style_configuration(tmp_path):
    leaf = tmp_path / "compositional_skills/writing/haiku/qna.yaml"
    leaf.parent.mkdir(parents=True)
    leaf.write_text("version: 3\ncreated_by: alice\ntask_description: Write a haiku.   \nseed_examples: []\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text("extends: relaxed\nrules:\n  trailing-spaces: disable\n")
    _, report = lint(tmp_path, "--select", "LT011")
    assert [f["message"] for f in report["findings"]] == ["trailing spaces [trailing-spaces]"]
    _, report = lint(tmp_path, "--select", "LT011", "--yaml-rules", str(rules))
    assert report["findings"] == []
