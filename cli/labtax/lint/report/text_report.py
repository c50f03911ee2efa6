"""`path:line:col: LEVEL ID message` with the fix hint beneath: what a person reads in a terminal."""

from labtax.lint.report import printable
from labtax.wording import counted

_COLORS = {"error": "\033[31m", "warning": "\033[33m"}


def render(result, *, color: bool = False) -> str:
    lines = []
    for f in result.findings:
        level = f"{_COLORS[f.level]}{f.level}\033[0m" if color else f.level
        lines.append(f"{printable(f.path)}:{f.line}:{f.col}: {level} {f.rule_id} {printable(f.message)}")
        if f.hint:
            lines.append(f"    fix: {f.hint}")
    lines.append(
        f"{counted(result.errors, 'error')}, {counted(result.warnings, 'warning')} in {counted(result.files, 'file')}"
    )
    return "\n".join(lines) + "\n"
