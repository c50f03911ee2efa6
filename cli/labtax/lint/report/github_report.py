"""GitHub Actions workflow commands, so findings show as annotations on the pull request's diff."""

from labtax.lint.report import printable
from labtax.wording import counted


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render(result, *, color: bool = False) -> str:
    lines = []
    for f in result.findings:
        command = "error" if f.level == "error" else "warning"
        props = (
            f"file={_escape_property(printable(f.path))},line={f.line},col={f.col},title={_escape_property(f.rule_id)}"
        )
        message = f"{printable(f.message)}\nfix: {f.hint}" if f.hint else printable(f.message)
        lines.append(f"::{command} {props}::{_escape_data(message)}")
    lines.append(
        f"{counted(result.errors, 'error')}, {counted(result.warnings, 'warning')} in {counted(result.files, 'file')}"
    )
    return "\n".join(lines) + "\n"
