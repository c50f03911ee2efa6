"""Progress bars per pipeline stage (tqdm on stderr), so an hour-long run is never silent."""

from __future__ import annotations

import sys


class StageProgress:
    def __init__(self, stages: list[str], enabled: bool | None = None):
        from tqdm import tqdm

        disable = (not sys.stderr.isatty()) if enabled is None else not enabled
        self._bars = {
            stage: tqdm(
                desc=f"{stage:>16}",
                unit="call",
                position=n,
                leave=True,
                file=sys.stderr,
                disable=disable,
                dynamic_ncols=True,
            )
            for n, stage in enumerate(stages)
        }

    def advance(self, stage: str) -> None:
        bar = self._bars.get(stage)
        if bar is not None:
            bar.update(1)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
