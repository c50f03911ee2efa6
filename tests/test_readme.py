"""The README documents every lint rule, from the rule modules themselves, and the two quick-start commands."""

from labtax.commands.rules import markdown_table
from labtax.lint.rules import all_rules

from .conftest import REPO


def test_readme_rule_table_is_generated_from_the_rule_modules():
    readme = (REPO / "README.md").read_text()
    assert markdown_table() in readme, "README rule table is stale: run `make rules-doc`"
    for rule in all_rules():
        assert f"| {rule.ID} | `{rule.NAME}` |" in readme


def test_every_rule_module_declares_its_contract():
    ids = [rule.ID for rule in all_rules()]
    assert len(ids) == len(set(ids)) >= 20
    for rule in all_rules():
        assert rule.LEVEL in ("error", "warning") and rule.SUMMARY and rule.WHY and rule.HINT
        assert rule.SCOPE in ("load", "path", "leaf", "tree")
        entry = {"load": "PROBLEM", "path": "check_path", "leaf": "check", "tree": "check_tree"}[rule.SCOPE]
        assert hasattr(rule, entry)


def test_quick_start_has_exactly_the_two_commands():
    readme = (REPO / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("##", 1)[0]
    block = quick.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make demo", "make test"]
