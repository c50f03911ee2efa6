"""The lint speed paths give exactly the verdicts of the slow, general ones they stand in for.

- schema_fast (valid without jsonschema) never calls an invalid leaf valid;
- LT011's libyaml token source gives yamllint's own problems, rule for rule;
- linting in worker processes gives the same findings as linting in one.
"""

from __future__ import annotations

import copy
import datetime
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from labtax.lint import schema
from labtax.lint.engine import worker_count
from labtax.lint.rules.lt011_yaml_style import BUILTIN, style_problems
from labtax.lint.schema_fast import is_valid
from labtax.lint.yamllint_libyaml import usable
from labtax.taxonomy.loader import LoadLimits, LoadProblem, load_leaf

from .conftest import CORPUS, REPO

LINT_CASES = REPO / "tests" / "lint_cases"


def _yaml_files() -> list[Path]:
    return sorted(p for base in (CORPUS, LINT_CASES) for p in base.rglob("*.y*ml"))


def _leaves():
    for path in _yaml_files():
        try:
            yield load_leaf(path.parent, path.name, LoadLimits(duplicate_keys_fatal=False))
        except (LoadProblem, OSError):
            continue


# ------------------------------------------------------------------ schema_fast

ODD_VALUES = [None, "", "x", 0, 3, 3.0, 2.5, True, False, [], {}, ["a"], {"k": "v"}, datetime.date(2024, 1, 1)]


def _node_paths(data, path=()):
    yield path
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _node_paths(value, path + (key,))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _node_paths(value, path + (i,))


def _mutate(data, rng: random.Random):
    """One random breakage: a value replaced, a key dropped or added, a list item repeated or dropped."""
    data = copy.deepcopy(data)
    path = rng.choice(list(_node_paths(data))[1:])
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    action = rng.randrange(4)
    if action == 0:
        parent[path[-1]] = copy.deepcopy(rng.choice(ODD_VALUES))
    elif action == 1:
        del parent[path[-1]]
    elif action == 2 and isinstance(parent, dict):
        parent["unexpected_" + str(rng.randrange(3))] = "value"
    elif isinstance(parent, list):
        parent.append(copy.deepcopy(parent[path[-1]]))
    return data


def _jsonschema_valid(kind, version, data) -> bool:
    return not any(True for _ in schema._validator(kind, version).iter_errors(data))


def test_schema_fast_never_passes_what_jsonschema_rejects():
    rng = random.Random(7)
    checked = decided = valid_proved = 0
    for leaf in _leaves():
        for version in (leaf.version, 1, 2, 3):
            spec = schema.schema_for(leaf.kind, version)
            if spec is None or spec.get("deprecated"):
                continue
            variants = [leaf.data] + [_mutate(leaf.data, rng) for _ in range(12)]
            for data in variants:
                fast = is_valid(spec, data, schema._schemas_by_id().get)
                truth = _jsonschema_valid(leaf.kind, version, data)
                checked += 1
                if fast is not None:
                    decided += 1
                    assert fast == truth, (leaf.path, version, data)
                valid_proved += fast is True
    assert checked > 2000
    assert decided > 0.95 * checked  # the quick check is not quietly handing everything to jsonschema
    assert valid_proved > 50


def test_validate_reports_the_same_errors_with_the_fast_path(monkeypatch):
    """validate() on broken leaves: errors come from jsonschema either way, so they are identical."""
    rng = random.Random(11)
    leaves = list(_leaves())[:60]
    cases = [(leaf.kind, leaf.version, _mutate(leaf.data, rng)) for leaf in leaves for _ in range(3)]
    with_fast = [schema.validate(*case) for case in cases]
    monkeypatch.setattr("labtax.lint.schema_fast.is_valid", lambda *args: None)
    assert with_fast == [schema.validate(*case) for case in cases]
    assert sum(bool(errors) for errors in with_fast) > len(cases) // 2


# ------------------------------------------------------------------ LT011 via libyaml

SNIPPETS = {
    "tags_directives": "%YAML 1.1\n%TAG !e! tag:example.com,2000:\n---\nversion: !!int 3\nname: !e!thing value\nlist: !!seq [a, b]\n...\n",
    "anchors": "base: &b {a: 1, b: 2}\nother:\n  <<: *b\n  c: 3\nseq:\n- &x one\n- *x\n",
    "flow": "a: {b: [1, 2, {c: d}], e: 'f', g: \"h\\u00e9\"}\nk: [ 1,2 ,3 ]\nempty: {}\nempty2: []\n",
    "comments": "#no space\n# ok\nkey: value #tight\nkey2: value  # fine\n  # misindented\nlist:\n  - a   ## double\n#\n",
    "truthy": "a: yes\nb: on\nc: True\nd: false\n'e': no\n",
    "quotes": "a: 'single'\nb: \"double\"\nc: plain\nd: |\n  block\ne: >-\n  folded\n  text\nf: |+\n  keep\n\n",
    "keys": "? complex key\n: value\n? [a, b]\n: v2\nduplicate: 1\nduplicate: 2\n",
    "multi": "---\na: 1\n---\nb: 2\n...\n---\nc: 3\n",
    "directives": "# yamllint disable rule:truthy\na: yes\n# yamllint enable\nb: yes  # yamllint disable-line\nc: yes\n",
    "indent": "a:\n    b: 1\n    c:\n    - x\n    -   y\nd:\n  - e\n  -  f\n",
    "unicode": 'q: "\U0001f642 smile"\nr: café \U0001f642 naïve — dash\ns: |\n  \U0001d518 text\n  more\nt: 1  # \U0001f642 comment\n',
    "tabs": 'a: "x\ty"\nb: |\n  \ttabbed block\n',
    "empty_values": "a:\nb: ~\nc: null\nd:\n  -\n  - x\n",
    "numbers": "a: 010\nb: 0o10\nc: .5\nd: 1e3\ne: 0x1F\nf: -.inf\n",
    "blank_lines": "a: 1   \nb: 2\n\n\n\nc: 3\n",
    "spacing": "a : 1\nb:  2\nc: [1 ,2]\nd: {x:1}\ne: [ ]\n-  h\n",
    "no_final_newline": "a: 1\nb: |\n  text",
    "chomping": "a: |2-\n    indented\nb: >+\n  keep\n\nc: x\n",
}
EVERY_RULE = (
    "{extends: default, rules: {quoted-strings: enable, key-ordering: enable, float-values: enable, octal-values: enable,"
    " empty-values: enable, document-start: enable, document-end: enable, anchors: enable, line-length: {max: 60}}}"
)


def _style_texts() -> dict[str, str]:
    texts = dict(SNIPPETS)
    for path in _yaml_files():
        try:
            texts[str(path)] = path.read_bytes().decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError:
            continue
    for i, (name, text) in enumerate(list(texts.items())):
        if name not in SNIPPETS and i % 4:
            continue  # line-ending and non-ASCII variants of the snippets and of every fourth file
        texts[name + " (CRLF)"] = text.replace("\n", "\r\n")
        texts[name + " (non-ASCII)"] = "# \U0001f642 café\n" + text.replace(": ", ": \U0001f642 ", 3)
    return texts


@pytest.mark.parametrize("config", ["builtin", "instructlab", "every-rule"])
def test_lt011_libyaml_tokens_give_yamllints_own_problems(config):
    conf = {
        "builtin": lambda: YamlLintConfig(file=str(BUILTIN)),
        "instructlab": lambda: YamlLintConfig(content="{extends: relaxed, rules: {line-length: disable}}"),
        "every-rule": lambda: YamlLintConfig(content=EVERY_RULE),
    }[config]()
    compared = fast = 0
    for name, text in _style_texts().items():
        try:
            expected = [
                (p.line, p.column, p.rule, p.desc, p.level)
                for p in linter.get_cosmetic_problems(text, conf, "qna.yaml")
            ]
        except yaml.YAMLError:
            continue  # yamllint itself crashes on it (a control character); the loader refuses such files first
        got = [(p.line, p.column, p.rule, p.desc, p.level) for p in style_problems(text, conf, "qna.yaml")]
        assert got == expected, name
        compared += 1
        fast += usable(text)
    assert compared > 300 and fast > compared // 2


# ------------------------------------------------------------------ worker processes


def _mixed_tree(tmp_path: Path) -> Path:
    """The corpus head plus every single-case tree from tests/lint_cases, each under its own folder."""
    root = tmp_path / "tree"
    shutil.copytree(CORPUS / "head", root)
    for case in sorted(LINT_CASES.iterdir()):
        for tree in ("compositional_skills", "foundational_skills", "knowledge"):
            if (case / tree).is_dir():
                shutil.copytree(case / tree, root / tree / f"case_{case.name}", symlinks=True, dirs_exist_ok=True)
    return root


_COMPARE_IN_FRESH_PROCESS = """
import json, sys, threading
from pathlib import Path
from labtax.config import load_config
from labtax.lint.engine import lint
from labtax.select import select
root = Path(sys.argv[1])
selection, config = select(root), load_config(root)
assert threading.active_count() == 1  # else lint() would quietly stay in-process
serial = lint(selection, config, jobs=1)
parallel = lint(selection, config, jobs=3)
print(json.dumps({
    "files": len(selection.files),
    "same_findings": parallel.findings == serial.findings,
    "same_leaves": [l.path for l in parallel.leaves] == [l.path for l in serial.leaves],
    "errors": serial.errors,
    "rules": sorted({f.rule_id for f in serial.findings}),
}))
"""


def test_worker_processes_give_the_same_findings(tmp_path):
    # A fresh interpreter: other tests leave threads behind (servers, model workers), and lint() rightly
    # refuses to fork a process that runs threads, which would make this comparison vacuous.
    root = _mixed_tree(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", _COMPARE_IN_FRESH_PROCESS, str(root)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["files"] > 60
    assert result["same_findings"] and result["same_leaves"]
    assert result["errors"] > 20  # the lint cases are broken on purpose: the comparison means something
    assert set(result["rules"]) >= {"LT001", "LT002", "LT011", "LT018", "LT020"}


def test_small_selections_stay_in_process():
    assert worker_count(None, 1) == 1
    assert worker_count(None, 40) == 1
    assert worker_count(4, 40) == 2  # never fewer than MIN_CHUNK files per worker
    assert worker_count(1, 5000) == 1


def test_linting_a_clean_leaf_imports_nothing_heavy(tmp_path):
    """The pre-commit hook's path: a clean leaf under an empty [tool.labtax] table imports neither jsonschema (the
    fast schema path; an empty settings table needs no validation) nor any later stage's libraries."""
    import shutil
    import subprocess
    import sys

    leaf = "compositional_skills/writing/business/ceo_earnings_email"
    shutil.copytree(REPO / leaf, tmp_path / leaf)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "t"\n\n[tool.labtax]\n')
    code = (
        "import sys\nfrom labtax.main import main\ntry:\n    main(['lint', sys.argv[1]])\nexcept SystemExit as exit:\n"
        "    heavy = [m for m in ('jsonschema', 'git', 'openai', 'torch', 'transformers') if m in sys.modules]\n"
        "    print(exit.code, heavy)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, f"{leaf}/qna.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.stdout.strip().splitlines()[-1] == "0 []", proc.stdout + proc.stderr
