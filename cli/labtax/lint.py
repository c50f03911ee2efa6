"""The linter loop: runs the selected rules over the selected files. It knows no rule by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

from labtax.config import Config
from labtax.findings import Finding
from labtax.rules import all_rules
from labtax.select import Selection
from labtax.taxonomy.kinds import LEAF_FILE
from labtax.taxonomy.leaf import Leaf
from labtax.taxonomy.loader import LoadLimits, LoadProblem, load_leaf


class RuleContext:
    """What a rule sees: its options and a way to make findings at its configured level."""

    def __init__(self, rule, config: Config):
        self.rule = rule
        self.options = config.rule_options(rule)
        self.level = self.options.get("level", rule.LEVEL)

    def finding(self, path, line, col, message, hint=None, level=None) -> Finding:
        return Finding(path, int(line), int(col), self.rule.ID, level or self.level, message, hint or self.rule.HINT)


@dataclass
class LintResult:
    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    leaves: list[Leaf] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(f.level == "error" for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.level == "warning" for f in self.findings)


def lint(selection: Selection, config: Config) -> LintResult:
    contexts = [RuleContext(rule, config) for rule in all_rules() if config.is_selected(rule)]
    by_scope: dict[str, list[RuleContext]] = {}
    for ctx in contexts:
        by_scope.setdefault(ctx.rule.SCOPE, []).append(ctx)
    load_rules = {ctx.rule.PROBLEM: ctx for ctx in by_scope.get("load", [])}
    limits = LoadLimits(config.max_file_bytes, config.max_nodes, config.duplicate_keys_fatal)
    result = LintResult(files=len(selection.files))

    for relpath in selection.files:
        for ctx in by_scope.get("path", []):
            result.findings += ctx.rule.check_path(relpath, ctx, explicit=selection.explicit)
        if PurePosixPath(relpath).name != LEAF_FILE:
            continue
        try:
            leaf = load_leaf(selection.root, relpath, limits)
        except LoadProblem as problem:
            ctx = load_rules.get(problem.kind)
            if ctx is not None:
                result.findings.append(ctx.finding(relpath, problem.line, problem.col, problem.message))
            continue
        except OSError as exc:
            raise_unreadable(relpath, exc, result, load_rules)
            continue
        result.leaves.append(leaf)
        for ctx in by_scope.get("leaf", []):
            result.findings += ctx.rule.check(leaf, ctx)

    for ctx in by_scope.get("tree", []):
        result.findings += ctx.rule.check_tree(result.leaves, ctx)
    result.findings.sort()
    return result


def raise_unreadable(relpath, exc, result, load_rules) -> None:
    """A file that cannot be opened (permissions, a dangling link) is reported like a broken one."""
    ctx = load_rules.get("encoding") or next(iter(load_rules.values()), None)
    if ctx is not None:
        result.findings.append(ctx.finding(relpath, 1, 1, f"cannot read file: {exc.strerror or exc}", "check that the file exists and is readable"))
