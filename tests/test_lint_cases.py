"""The lint test corpus: every case folder under tests/lint_cases/ gets exactly its expected findings.

A case is a mini taxonomy root (its own compositional_skills/, knowledge/, ... and optionally a
.labtax.toml or .yamllint.yaml) plus `expected.json`, the complete list of findings
`{"path", "rule_id", "line", "col"[, "level"][, "message_contains"]}` — no more, no fewer. An optional
`case.json` holds what a command line would add: `paths`, `profile`, `select`, `ignore`.
Inputs that cannot sensibly be committed (binary, huge, symlinks, other encodings) are written into
tmp_path by GENERATED below. The CLI is exercised end to end on the same cases at the bottom.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from labtax.config import Overrides, load_config
from labtax.lint import schema
from labtax.lint.engine import lint
from labtax.lint.rules import all_rules
from labtax.select import select

from .conftest import run_labtax

CASES = Path(__file__).resolve().parent / "lint_cases"
CASE_NAMES = sorted(p.name for p in CASES.iterdir() if (p / "expected.json").is_file())
SKILL = "compositional_skills/writing/poetry/haiku/qna.yaml"
KNOWLEDGE = "knowledge/science/astronomy/planets/qna.yaml"
ATTRIBUTION = "Title of work: Haiku seeds\nLink to work: https://example.com/haiku\nLicense of the work: CC-BY-4.0\nCreator names: Alice Example\n"


def run_case(root: Path, settings: dict | None = None):
    settings = settings or {}
    overrides = Overrides(select=tuple(settings.get("select") or ()), ignore=tuple(settings.get("ignore") or ()))
    config = load_config(root, profile=settings.get("profile"), overrides=overrides)
    return lint(select(root, [str(root / p) for p in settings.get("paths", [])]), config)


def assert_findings(findings, expected: list[dict]) -> None:
    """Each expected entry consumes one matching finding; nothing may be left over on either side."""
    left = list(findings)
    missing = []
    for want in expected:
        for f in left:
            if (
                (f.path, f.rule_id, f.line, f.col) == (want["path"], want["rule_id"], want["line"], want["col"])
                and f.level == want.get("level", f.level)
                and want.get("message_contains", "") in f.message
            ):
                left.remove(f)
                break
        else:
            missing.append(want)
    show = "\n".join(f"  {f.path}:{f.line}:{f.col}: {f.level} {f.rule_id} {f.message}" for f in findings)
    assert not missing and not left, f"missing: {missing}\nunexpected: {left}\nall findings:\n{show}"
    for f in findings:  # every finding is located and says how to fix it
        assert f.line >= 1 and f.col >= 1 and f.hint, f


@pytest.fixture(autouse=True)
def fresh_schema_cache():
    """Cases must not see each other through the per-version schema caches (one case tests exactly that)."""
    schema._shipped.cache_clear()
    schema._validator.cache_clear()


@pytest.mark.parametrize("name", CASE_NAMES)
def test_case(name):
    root = CASES / name
    settings = json.loads((root / "case.json").read_text()) if (root / "case.json").is_file() else None
    expected = json.loads((root / "expected.json").read_text())
    assert_findings(run_case(root, settings).findings, expected)


# --- cases written at test time ----------------------------------------------------------------


def _skill_text(n: int = 5) -> str:
    lines = [
        "version: 3",
        "created_by: alice",
        "task_description: Write a short haiku about the topic the user names.",
        "seed_examples:",
    ]
    for i in range(n):
        lines += [f"  - question: Write haiku number {i}.", f"    answer: Haiku {i} is about the rain on the roof."]
    return "\n".join(lines) + "\n"


def _leaf(root: Path, rel: str = SKILL, content: bytes | str | None = None) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.parent / "attribution.txt").write_text(ATTRIBUTION)
    if content is not None:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def gen_non_utf8(root: Path):
    _leaf(root, content=_skill_text().replace("alice", "Jos\xe9").encode("latin-1"))
    return [
        {"path": SKILL, "rule_id": "LT005", "line": 2, "col": 16, "message_contains": "not valid UTF-8 (byte 0xe9)"}
    ]


def gen_binary(root: Path):
    _leaf(root, content=b"version: 3\n\x00\x01\x02\xff")
    return [{"path": SKILL, "rule_id": "LT006", "line": 2, "col": 1, "message_contains": "binary"}]


def gen_over_default_size(root: Path):
    text = _skill_text()
    _leaf(root, content=text + "#" * (1024 * 1024 - len(text)) + "\n")
    return [
        {
            "path": SKILL,
            "rule_id": "LT007",
            "line": 1,
            "col": 1,
            "message_contains": "file is 1048577 bytes; the limit is 1048576",
        }
    ]


def gen_symlink_escape(root: Path):
    outside = root.parent / "outside.yaml"
    outside.write_text(_skill_text())
    _leaf(root).symlink_to(outside)
    return [
        {
            "path": SKILL,
            "rule_id": "LT008",
            "line": 1,
            "col": 1,
            "message_contains": "symlink points outside the repository",
        }
    ]


def gen_symlink_inside(root: Path):
    source = root / "shared" / "haiku.yaml"
    source.parent.mkdir(parents=True)
    source.write_text(_skill_text())
    _leaf(root).symlink_to(source)
    return []


def gen_dangling_symlink(root: Path):
    _leaf(root).symlink_to("gone.yaml")  # relative, so it stays dangling (not escaping) wherever the case is moved
    return [{"path": SKILL, "rule_id": "LT021", "line": 1, "col": 1, "message_contains": "cannot read file"}]


def gen_document_pattern_matches_nothing(root: Path):
    """LT022 needs a real repository to fetch: a bare one beside the taxonomy, reached by a file:// URL."""
    work, bare = root.parent / "docs-work", root.parent / "docs.git"
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    work.mkdir()
    (work / "planets.md").write_text("# Planets\n\nEight planets orbit the Sun.\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "docs"]):
        subprocess.run(["git", *args], cwd=work, check=True, env=env)
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=work, check=True, env=env, capture_output=True, text=True
    ).stdout.strip()
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True, env=env)
    valid = CASES / "valid_knowledge_v3_in_repo_documents" / KNOWLEDGE
    text = (
        valid.read_text()
        .replace("repo: ./documents/planets", f"repo: file://{bare}")
        .replace("commit: HEAD", f"commit: {sha}")
    )
    text = text.replace('    - "*.md"', '    - "*.md"\n    - moons/*.md')
    _leaf(root, KNOWLEDGE, text)
    (root / ".labtax.toml").write_text("[rules.LT022]\nenabled = true\n")
    line = text.splitlines().index("    - moons/*.md") + 1
    return [
        {
            "path": KNOWLEDGE,
            "rule_id": "LT022",
            "line": line,
            "col": 7,
            "message_contains": "pattern 'moons/*.md' matches no file",
        }
    ]


GENERATED = {
    f.__name__.removeprefix("gen_"): f
    for f in (
        gen_non_utf8,
        gen_binary,
        gen_over_default_size,
        gen_symlink_escape,
        gen_symlink_inside,
        gen_dangling_symlink,
        gen_document_pattern_matches_nothing,
    )
}
SKILL_CASES = [
    f for f in GENERATED.values() if f not in (gen_symlink_inside, gen_document_pattern_matches_nothing)
]  # bad skill leaves


@pytest.fixture(autouse=True)
def _document_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LABTAX_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_case(name, tmp_path, monkeypatch):
    monkeypatch.setenv("LABTAX_ALLOW_LOCAL_DOCUMENT_REPOS", "1")  # LT022's case fetches a repository beside it
    root = tmp_path / "taxonomy"
    root.mkdir()
    expected = GENERATED[name](root)
    assert_findings(run_case(root).findings, expected)


# --- the corpus itself ---------------------------------------------------------------------------


def test_corpus_covers_every_rule_with_valid_and_invalid_cases(tmp_path):
    expected = {name: json.loads((CASES / name / "expected.json").read_text()) for name in CASE_NAMES}
    invalid = [n for n, e in expected.items() if e]
    valid = [n for n, e in expected.items() if not e and n.startswith("valid_")]
    assert len(invalid) + len(SKILL_CASES) >= 40
    assert len(valid) >= 6
    generated = set()
    for name, make in GENERATED.items():  # the cases made at test time (binary, huge, symlinks...) count too
        (tmp_path / name).mkdir()
        generated |= {e["rule_id"] for e in make(tmp_path / name)}
    covered = {e["rule_id"] for entries in expected.values() for e in entries} | generated
    assert covered == {rule.ID for rule in all_rules()}
    for name in invalid:  # an invalid case is named after (one of) the rules it expects
        prefix = name.split("_", 1)[0]
        assert prefix == "cfg" or prefix.upper() in {e["rule_id"] for e in expected[name]}, name


# --- the CLI end to end -------------------------------------------------------------------------

NOT_GITHUB = {"GITHUB_ACTIONS": "false"}


def test_cli_text_format_lines_and_hint():
    proc = run_labtax("lint", cwd=CASES / "lt001_min_items", env=NOT_GITHUB)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"{SKILL}:5:3: error LT001 seed_examples needs at least 5 items, found 3"
    assert lines[1].strip() == "fix: add 2 more"
    assert lines[-1] == "1 error, 0 warnings in 1 file"
    assert "\033[" not in proc.stdout  # no colour codes when stdout is not a terminal


def test_cli_json_format_matches_the_case_and_writes_output(tmp_path):
    root = CASES / "lt001_duplicate_items"
    out = tmp_path / "report.json"
    proc = run_labtax("lint", "--format", "json", "--output", str(out), cwd=root)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["errors"] == 1 and report["warnings"] == 1 and report["files"] == 1
    expected = json.loads((root / "expected.json").read_text())
    key = ("path", "rule_id", "line", "col", "level")
    assert sorted(tuple(f[k] for k in key) for f in report["findings"]) == sorted(
        tuple(e[k] for k in key) for e in expected
    )
    assert json.loads(out.read_text()) == report


def test_cli_github_format_and_auto_under_github_actions():
    root = CASES / "lt011_truthy_answer"
    explicit = run_labtax("lint", "--format", "github", cwd=root, env=NOT_GITHUB)
    auto = run_labtax("lint", cwd=root, env={"GITHUB_ACTIONS": "true"})
    assert explicit.returncode == auto.returncode == 1
    assert auto.stdout == explicit.stdout
    lines = explicit.stdout.splitlines()
    assert lines[0].startswith(
        f"::error file={SKILL},line=6,col=13,title=LT001::answer must be text, found true/false%0Afix: "
    )
    assert lines[1].startswith(f"::warning file={SKILL},line=6,col=13,title=LT011::")


def test_cli_exit_codes_clean_findings_and_usage_error():
    clean = run_labtax("lint", cwd=CASES / "valid_whole_tree", env=NOT_GITHUB)
    assert clean.returncode == 0 and clean.stdout.strip() == "0 errors, 0 warnings in 3 files", clean.stdout
    missing = run_labtax("lint", "no/such/qna.yaml", cwd=CASES / "valid_whole_tree")
    assert missing.returncode == 2
    assert "no/such/qna.yaml: no such file or folder" in missing.stderr and "Traceback" not in missing.stderr


def test_cli_select_ignore_and_strict():
    root = CASES / "lt011_truthy_answer"  # LT001 error + LT011 warning at 6:13

    def rules(*args):
        proc = run_labtax("lint", "--format", "json", *args, cwd=root)
        return proc.returncode, sorted(f["rule_id"] for f in json.loads(proc.stdout)["findings"])

    assert rules() == (1, ["LT001", "LT011"])
    assert rules("--select", "yaml-style") == (0, ["LT011"])  # a warning alone passes...
    assert rules("--select", "yaml-style", "--strict") == (1, ["LT011"])  # ...unless --strict
    assert rules("--ignore", "LT001,LT011") == (0, [])
    assert rules("--select", "LT001", "--select", "LT011", "--ignore", "schema") == (0, ["LT011"])


def test_cli_explicit_path_lints_only_that_leaf():
    root = CASES / "lt020_duplicate_question_across_leaves"
    both = json.loads(run_labtax("lint", "--format", "json", cwd=root).stdout)
    one = json.loads(
        run_labtax("lint", "--format", "json", "compositional_skills/writing/poetry/tanka", cwd=root).stdout
    )
    assert (both["files"], [f["rule_id"] for f in both["findings"]]) == (2, ["LT020"])
    assert (one["files"], one["findings"]) == (1, [])


def test_cli_bad_inputs_never_give_a_traceback(tmp_path):
    """Every bad-input kind in one tree: located findings on stdout, nothing on stderr."""
    root = tmp_path / "taxonomy"
    root.mkdir()
    expected_rules = set()
    for i, make in enumerate(SKILL_CASES):
        sub = tmp_path / f"gen{i}"
        sub.mkdir()
        for entry in make(sub):
            expected_rules.add(entry["rule_id"])
        target = root / f"compositional_skills/generated/case_{i}"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(sub / "compositional_skills/writing/poetry/haiku", target)
    for name in (
        "lt002_colon_in_plain_scalar",
        "lt002_control_character",
        "lt003_duplicate_key",
        "lt004_alias_bomb",
        "lt009_empty_file",
        "lt010_top_level_scalar",
    ):
        source = CASES / name / SKILL
        target = root / f"compositional_skills/{name}/qna.yaml"
        target.parent.mkdir(parents=True)
        target.write_bytes(source.read_bytes())
        expected_rules.add(name.split("_")[0].upper())
    proc = run_labtax("lint", "--format", "json", cwd=root)
    assert proc.returncode == 1 and proc.stderr == "", proc.stderr
    report = json.loads(proc.stdout)
    assert {f["rule_id"] for f in report["findings"]} >= expected_rules
    assert all(f["line"] >= 1 and f["col"] >= 1 for f in report["findings"])
