"""The README documents every lint rule, from the rule modules themselves, and the two quick-start commands."""

import re

from labtax.commands.rules import markdown_table
from labtax.lint.rules import all_rules

from .conftest import REPO, run_labtax
from .markdown_blocks import FENCE, blocks


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


# ------------------------------------------------------------ every command and flag the docs show exists
DOCS = ("README.md", "CONTRIBUTING.md", "docs/cli.md", "docs/generation.md", "docs/ci.md", "docs/scale.md")
INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
FLAG = re.compile(r"(?<![\w-])(--?[a-zA-Z][\w-]*)")
# where one command's words end inside a snippet: another command, a shell operator, a comment
TAIL_END = re.compile(r"\s(?:&&|\|\||\||;|#)\s|\$\(|\)")


def snippets(path) -> list[str]:
    """The code a document shows: its inline code spans (outside fenced blocks) and the lines of its blocks."""
    text = path.read_text(encoding="utf-8")
    found = [re.sub(r"(^|\s)#.*", "", line) for block in blocks(path) for line in block.splitlines()]  # no comments
    prose = FENCE.sub("", text)
    return found + [span for span in INLINE_CODE.findall(prose)]


def shown_commands() -> dict[tuple[str, ...], set[str]]:
    """(command, subcommand...) -> the flags shown with it, over every document."""
    shown: dict[tuple[str, ...], set[str]] = {}
    for name in DOCS:
        for snippet in snippets(REPO / name):
            for match in re.finditer(r"(?:^|[\s(])labtax ([a-z]+)\b(.*?)(?=(?:[\s(]labtax [a-z])|$)", snippet):
                tail = TAIL_END.split(match[2], maxsplit=1)[0]
                words = tail.split()
                command = (match[1],)
                if words and re.fullmatch(r"[a-z]+(?:\\?\|[a-z]+)*", words[0]) and match[1] in GROUPS:
                    command = (match[1], words[0].replace("\\", ""))
                shown.setdefault(command, set()).update(f for f in FLAG.findall(tail) if f not in ("-", "--"))
    return shown


GROUPS = ("teacher", "cache")  # commands with subcommands


def help_of(*words: str) -> str:
    proc = run_labtax(*words, "--help")
    assert proc.returncode == 0, f"`labtax {' '.join(words)}` shown in the docs is not a command: {proc.stderr}"
    return proc.stdout


def test_every_command_and_flag_the_docs_show_is_in_its_help():
    shown = shown_commands()
    assert ("lint",) in shown and ("teacher", "export") in shown and "--max-attempts" in shown[("generate",)]
    missing = []
    for command, flags in sorted(shown.items()):
        subcommands = command[1].split("|") if len(command) > 1 else [None]
        helps = "".join(help_of(command[0], *([sub] if sub else [])) for sub in subcommands)
        for flag in sorted(flags):
            if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", helps):
                missing.append(f"labtax {' '.join(command)} {flag}")
    assert not missing, f"the docs show flags these commands do not have: {missing}"


# ------------------------------------------------------------ what the README says of the comment
def reasons_in_code() -> set[str]:
    """Every rejection reason generation can write, read from where the code writes them."""
    found: set[str] = set()
    for path in (REPO / "cli" / "labtax" / "generate").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        found |= set(re.findall(r'Reject\(\s*(?:"[^"]*"|[\w.\[\]]+)\s*,\s*"([a-z_]+)"', text))
        found |= set(re.findall(r'CheckFailure\(\s*"([a-z_]+)"', text))
        found |= set(re.findall(r'return \(\s*"([a-z_]+)",', text))  # runner.reply_problem's (reason, detail)
    return found


def test_the_readme_names_every_rejection_reason():
    readme = (REPO / "README.md").read_text()
    listed = readme.split("Rejection reasons:", 1)[1].split("How well each part", 1)[0]
    in_code = reasons_in_code()
    assert {"oversized", "invalid_text", "off_topic", "duplicate", "no_documents"} <= in_code
    assert set(re.findall(r"`([a-z_]+)`", listed)) == in_code


def test_the_readme_describes_the_comment_leaf_table_as_rendered():
    from labtax.comment.render import TABLE_HEAD

    columns = [cell.strip() for cell in TABLE_HEAD.splitlines()[0].strip("|").split("|")]
    bullet = (REPO / "README.md").read_text().split("- **Leaf table**:", 1)[1].split("\n- **", 1)[0]
    assert f"columns {', '.join(columns)}:" in " ".join(bullet.split())
    assert "time column" not in TABLE_HEAD.lower() and "No time column" in bullet
