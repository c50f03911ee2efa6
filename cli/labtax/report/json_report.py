"""Machine-readable findings for tools and the PR comment."""

import json


def render(result, *, color: bool = False) -> str:
    payload = {
        "files": result.files,
        "errors": result.errors,
        "warnings": result.warnings,
        "findings": [f.as_dict() for f in result.findings],
    }
    return json.dumps(payload, indent=2) + "\n"
