"""Finding: the plain-data result every check produces and every reporter renders."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, order=True)
class Finding:
    """One problem at one place. Sorted by location so output is stable."""

    path: str
    line: int
    col: int
    rule_id: str
    level: str
    message: str
    hint: str = ""

    def as_dict(self) -> dict:
        return asdict(self)
