"""The linter loop: runs the selected rules over the selected files. It knows no rule by name."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from labtax.config import Config
from labtax.lint.findings import Finding
from labtax.lint.rules import all_rules
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
        self.source = config.source  # the settings file, for messages about a setting

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


PARALLEL_MIN_FILES = 100  # below this, starting worker processes costs more than they save
MIN_CHUNK = 16  # files per task handed to a worker


class _Plan:
    """The selected rules grouped by scope, plus the loader limits: everything a file's check needs."""

    def __init__(self, selection: Selection, config: Config):
        contexts = [RuleContext(rule, config) for rule in all_rules() if config.is_selected(rule)]
        self.by_scope: dict[str, list[RuleContext]] = {}
        for ctx in contexts:
            self.by_scope.setdefault(ctx.rule.SCOPE, []).append(ctx)
        self.load_rules = {ctx.rule.PROBLEM: ctx for ctx in self.by_scope.get("load", [])}
        self.limits = LoadLimits(config.max_file_bytes, config.max_nodes, config.duplicate_keys_fatal)
        self.selection = selection

    def check_files(self, files: list[str]) -> tuple[list[Finding], list[Leaf]]:
        """Path, load and leaf rules for some files; the leaves that loaded, for the tree rules."""
        findings: list[Finding] = []
        leaves: list[Leaf] = []
        selection = self.selection
        for relpath in files:
            for ctx in self.by_scope.get("path", []):
                findings += ctx.rule.check_path(relpath, ctx, explicit=selection.explicit)
            if PurePosixPath(relpath).name != LEAF_FILE:
                continue
            try:
                leaf = load_leaf(selection.root, relpath, self.limits)
            except LoadProblem as problem:
                load_ctx = self.load_rules.get(problem.kind)
                if load_ctx is not None:
                    findings.append(load_ctx.finding(relpath, problem.line, problem.col, problem.message))
                continue
            leaves.append(leaf)
            for ctx in self.by_scope.get("leaf", []):
                findings += ctx.rule.check(leaf, ctx)
        return findings, leaves


def lint(selection: Selection, config: Config, *, jobs: int | None = None) -> LintResult:
    """Run the selected rules; `jobs` worker processes (None: one per CPU for large selections)."""
    plan = _Plan(selection, config)
    result = LintResult(files=len(selection.files))
    for findings, leaves in _check_all(plan, selection.files, jobs):
        result.findings += findings
        result.leaves += leaves
    for ctx in plan.by_scope.get("tree", []):
        result.findings += ctx.rule.check_tree(result.leaves, ctx)
    result.findings.sort()
    return result


def worker_count(jobs: int | None, files: int) -> int:
    """How many processes to use: small selections (pre-commit, one leaf) stay in this process."""
    if jobs is None:
        if files < PARALLEL_MIN_FILES:
            return 1
        jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(jobs, files // MIN_CHUNK))


_PLAN: _Plan | None = None  # the plan a forked worker inherits from its parent


def _check_chunk(files: list[str]) -> tuple[list[Finding], list[Leaf]]:
    assert _PLAN is not None, "set before the workers fork"
    return _PLAN.check_files(files)


def _check_all(plan: _Plan, files: list[str], jobs: int | None):
    """Per-file checks, spread over forked worker processes when that pays (yamllint is pure Python)."""
    workers = worker_count(jobs, len(files))
    if workers == 1:
        return [plan.check_files(files)]
    import multiprocessing
    import threading
    from concurrent.futures import ProcessPoolExecutor

    # Spawned workers would re-import everything; forking a process that runs other threads is unsafe.
    if "fork" not in multiprocessing.get_all_start_methods() or threading.active_count() > 1:
        return [plan.check_files(files)]

    global _PLAN
    size = max(MIN_CHUNK, len(files) // (workers * 8))
    chunks = [files[i : i + size] for i in range(0, len(files), size)]
    _PLAN = plan  # forked workers inherit it: rules, config and caches are never pickled
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_check_chunk, chunks))
    finally:
        _PLAN = None
