"""`labtax diff`: the exact set of leaves this branch changed, as CI and every --changed command see it."""

from __future__ import annotations

import json
import sys

import click

from labtax.commands.options import profile_option, root_option
from labtax.wording import counted

MARK = {"added": "A", "modified": "M", "renamed": "R", "deleted": "D"}


@click.command("diff")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--base",
    metavar="REF",
    default=None,
    help="Compare with the merge-base of REF and HEAD; 'empty' = every leaf. Default: $GITHUB_BASE_REF, the upstream, origin/main, main, master.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Output format."
)
@click.option("--include-deleted", is_flag=True, help="Also list deleted leaves.")
@click.option("--lint", "run_lint", is_flag=True, help="Lint exactly the changed leaves; exit 1 on errors.")
@profile_option
@root_option
def command(paths, base, fmt, include_deleted, run_lint, profile, root):
    """List the leaves changed since the merge-base of the base branch and HEAD, including staged,
    unstaged and untracked changes. PATHS limit the list to those files or folders.

    A change to a leaf's attribution.txt, or to an in-repo document a knowledge leaf reads, counts as a
    change to that leaf. Leaves the loader (or, with --lint, the linter) rejects are flagged invalid.
    Exit status: 0 listed, 1 lint errors (with --lint), 2 usage, git or shallow-clone problem.
    """
    from labtax.config import find_root
    from labtax.select import changed_selection

    root = (root or find_root()).resolve()
    selection = changed_selection(root, base, paths)
    result = None
    if run_lint:
        result = _lint(selection, profile)
    changes = selection.changes or []
    shown = [c for c in changes if include_deleted or c.status != "deleted"]
    hidden = len(changes) - len(shown)
    if fmt == "json":
        sys.stdout.write(_json(selection, shown, hidden, result))
    else:
        sys.stdout.write(_text(selection, shown, hidden, result))
    return 1 if result is not None and result.errors else 0


def _lint(selection, profile):
    """Lint the selected files and count each leaf's lint errors as problems that make it invalid."""
    from labtax.config import load_config
    from labtax.lint.engine import lint

    result = lint(selection, load_config(selection.root, profile=profile))
    by_path = {c.path: c for c in selection.changes}
    for finding in result.findings:
        if finding.level == "error" and finding.path in by_path:
            by_path[finding.path].problems.append(
                f"{finding.rule_id} {finding.message} (line {finding.line}, col {finding.col})"
            )
    return result


def _header(changeset) -> dict:
    return {
        "base": changeset.base,
        "base_reason": changeset.base_reason,
        "merge_base": changeset.merge_base,
        "head": changeset.head,
        "branch": changeset.branch,
        "shallow": changeset.shallow,
    }


def _counts(changes) -> dict:
    counts = {status: 0 for status in MARK}
    for change in changes:
        counts[change.status] += 1
    return counts


def _json(selection, shown, hidden, result) -> str:
    payload = {
        **_header(selection.changeset),
        "root": str(selection.root),
        "leaves": [_printable_change(c.as_dict()) for c in shown],
        "counts": _counts(selection.changes),
        "invalid": sum(not c.valid for c in shown),
        "deleted_hidden": hidden,
        "notes": selection.notes,
    }
    if result is not None:
        from labtax.lint.report import render

        payload["lint"] = json.loads(render("json", result))
    return json.dumps(payload, indent=2) + "\n"


def _printable_change(change: dict) -> dict:
    """A leaf change with every path and message escaped (odd bytes, newlines) as reporters print them."""
    from labtax.lint.report import printable

    out = {key: printable(value) if isinstance(value, str) else value for key, value in change.items()}
    for key in ("reasons", "problems"):
        out[key] = [printable(item) for item in change[key]]
    return out


def _text(selection, shown, hidden, result) -> str:
    cs = selection.changeset
    since = f"merge-base {cs.merge_base[:12]}" if cs.merge_base else "nothing"
    if cs.repo is None:
        where = "files on disk"
    else:
        where = (
            (cs.branch or f"detached HEAD {cs.head[:12]}") + " + working tree"
            if cs.head
            else "no commits yet + working tree"
        )
    lines = [f"base {cs.base} ({cs.base_reason}), {since} -> {where}"]
    for change in map(_printable_change, (c.as_dict() for c in shown)):
        path = f"{change['old_path']} -> {change['path']}" if change["status"] == "renamed" else change["path"]
        version = f"v{change['version']}" if change["version"] is not None else "v?"
        extra = [r for r in change["reasons"] if not r.startswith(("qna.yaml", "renamed from"))]
        line = f"{MARK[change['status']]} {path}  [{change['kind']} {version}]"
        if extra:
            line += f"  ({'; '.join(extra)})"
        lines.append(line)
        lines += [f"    INVALID: {problem}" for problem in change["problems"]]
    counts = _counts(selection.changes)
    summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    invalid = sum(not c.valid for c in shown)
    lines.append(
        f"{counted(len(selection.changes), 'leaf')} changed"
        + (f" ({summary})" if summary else "")
        + (f"; {invalid} invalid" if invalid else "")
    )
    if hidden:
        lines.append(f"{counted(hidden, 'deleted leaf')} not shown; add --include-deleted")
    lines += [f"note: {note}" for note in selection.changeset.notes]
    text = "\n".join(lines) + "\n"
    if result is not None:
        from labtax.lint.report import render

        text += "\n" + render("text", result, color=sys.stdout.isatty())
    return text
