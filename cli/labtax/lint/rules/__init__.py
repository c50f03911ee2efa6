"""Lint rules, one module each.

A rule module declares ID, NAME, LEVEL, SCOPE, SUMMARY (what it checks), WHY, HINT (how to fix),
DEFAULTS (its options) and, by scope, one check function:
  load  - PROBLEM names the loader problem kind it reports (the loader does the checking)
  path  - check_path(relpath, ctx)   for every candidate file, before it is read
  leaf  - check(leaf, ctx)           for every leaf that loaded
  tree  - check_tree(leaves, ctx)    once, across all leaves that loaded
The linter loop knows rules only through this interface.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil


@functools.cache
def all_rules() -> tuple:
    modules = [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in pkgutil.iter_modules(__path__)
        if info.name.startswith("lt")
    ]
    return tuple(sorted(modules, key=lambda m: m.ID))


def rule_by_id(rule_id: str):
    for rule in all_rules():
        if rule_id in (rule.ID, rule.NAME):
            return rule
    raise KeyError(rule_id)
