"""docs/architecture.md tells the truth: every module or package its Packages table names exists, and every
package and top-level module of labtax (and every subpackage) is named there."""

from __future__ import annotations

import re

from .conftest import REPO

PACKAGE = REPO / "cli" / "labtax"


def _table() -> list[tuple[list[str], str]]:
    """(the names in the first cell, the second cell) of each row of the Packages table."""
    text = (REPO / "docs" / "architecture.md").read_text()
    section = text.split("## Packages", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].startswith("`"):
            rows.append((re.findall(r"`([^`]+)`", cells[0]), cells[1]))
    return rows


def _exists(name: str, where) -> bool:
    return (where / name.rstrip("/")).exists()


def test_every_module_the_table_names_exists():
    missing = []
    for names, about in _table():
        for name in names:
            if not _exists(name, PACKAGE):
                missing.append(name)
        folder = PACKAGE / names[0].rstrip("/") if names[0].endswith("/") else PACKAGE
        for name in re.findall(r"`([\w/]+(?:\.py|/))`", about):
            if not (_exists(name, folder) or _exists(name, PACKAGE)):
                missing.append(f"{names[0]}{name}")
    assert not missing, f"docs/architecture.md names modules that are not there: {missing}"


def test_every_package_and_module_is_in_the_table():
    rows = _table()
    named = {name.rstrip("/") for names, _ in rows for name in names}
    top = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    top |= {p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    missing = sorted(name for name in top if name not in named and name.removesuffix(".py") not in named)
    assert not missing, f"docs/architecture.md's Packages table misses: {missing}"
    about = {names[0].rstrip("/"): text for names, text in rows}
    unnamed = [
        f"{sub.parent.name}/{sub.name}/"
        for sub in sorted(PACKAGE.glob("*/*/__init__.py"))
        for sub in [sub.parent]
        if f"`{sub.name}/`" not in about.get(sub.parent.name, "")
    ]
    assert not unnamed, f"docs/architecture.md's Packages table misses these subpackages: {unnamed}"
