"""Machine-readable findings for tools and the PR comment."""

import json

from labtax.lint.report import printable


def render(result, *, color: bool = False) -> str:
    payload = {
        "files": result.files,
        "errors": result.errors,
        "warnings": result.warnings,
        "findings": [
            {**f.as_dict(), "path": printable(f.path), "message": printable(f.message)} for f in result.findings
        ],
    }
    return json.dumps(payload, indent=2) + "\n"
