"""Progress per pipeline stage, where people look, so an hour-long run is never silent.

In a terminal: one tqdm bar per stage, as before. Without one (a CI log such as GitHub Actions', where
bars either vanish or print a carriage-return mess): a plain line on stderr about every 10 s (set
LABTAX_PROGRESS_INTERVAL, in seconds, to change it), with each stage's calls done out of the planned
ones, its rate, the samples accepted so far when finished leaves report them, and an ETA.

The planned calls (`expected_calls`) are the fewest a run makes (one candidate per sample); rejected
candidates are retried, so a stage can pass its plan and the ETA is a floor, and it says so.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

INTERVAL_ENV = "LABTAX_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 10.0


def expected_calls(leaves: Iterable[Any], num_samples: int) -> dict[str, int]:
    """The teacher calls each stage makes if every first candidate is accepted: a progress line's "of N"."""
    from labtax.generate.pipelines import pipeline_for

    totals: dict[str, int] = {}
    for leaf in leaves:
        for stage in pipeline_for(leaf).STAGES:
            totals[stage] = totals.get(stage, 0) + num_samples
    return totals


def interval_from_env(default: float = DEFAULT_INTERVAL) -> float:
    """LABTAX_PROGRESS_INTERVAL seconds, when it is a positive number; else `default`."""
    try:
        value = float(os.environ.get(INTERVAL_ENV, ""))
    except ValueError:
        return default
    return value if math.isfinite(value) and value > 0 else default


def span(seconds: float) -> str:
    """A short duration for a log line: 42 s, 3 min 05 s, 1 h 02 min."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def rate(per_second: float) -> str:
    """Calls a second, or a minute for a slow (CPU) teacher, with the digits that matter: 12/s, 2.1/s, 0.6/min."""
    if per_second >= 1:
        return f"{per_second:.{0 if per_second >= 10 else 1}f}/s"
    per_minute = per_second * 60
    return f"{per_minute:.{0 if per_minute >= 10 else 1 if per_minute >= 0.1 else 2}f}/min"


class PlainProgress:
    """Periodic plain lines for logs without a terminal; the counting is separate from the timer, for tests."""

    def __init__(
        self,
        stages: list[str],
        totals: dict[str, int] | None = None,
        leaves: int | None = None,
        *,
        interval: float | None = None,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.stages = list(stages)
        self.totals = dict(totals or {})
        self.leaves = leaves
        self.interval = interval if interval is not None else interval_from_env()
        self._stream = stream
        self._clock = clock
        self._lock = threading.Lock()
        self.started = clock()
        self.done = dict.fromkeys(self.stages, 0)
        self.first: dict[str, float] = {}
        self.accepted: int | None = None
        self.leaves_done = 0
        self.lines = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> PlainProgress:
        self._thread = threading.Thread(target=self._run, name="labtax-progress", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.emit()

    def advance(self, stage: str) -> None:
        with self._lock:
            if stage not in self.done:
                self.stages.append(stage)
                self.done[stage] = 0
            self.done[stage] += 1
            self.first.setdefault(stage, self._clock())

    def leaf_done(self, result: object) -> None:
        """A finished leaf (a LeafResult, or its number of accepted samples)."""
        accepted = result if isinstance(result, int) else len(getattr(result, "accepted", None) or [])
        with self._lock:
            self.accepted = (self.accepted or 0) + accepted
            self.leaves_done += 1

    def line(self, final: bool = False) -> str:
        """The current state in one line."""
        with self._lock:
            now = self._clock()
            parts = []
            for stage in self.stages:
                done, total = self.done[stage], self.totals.get(stage)
                text = f"{stage} {done}/{total}" if total else f"{stage} {done}"
                began = self.first.get(stage)
                if began is not None and now - began >= 1 and not final:
                    text += f" ({rate(done / (now - began))})"
                parts.append(text)
            tail = []
            if self.accepted is not None:
                of = f" of {self.leaves}" if self.leaves is not None else ""
                tail.append(f"{self.leaves_done}{of} leaves done, {self.accepted} samples accepted")
            if not final:
                tail.append(self._eta(now))
            head = f"progress {span(now - self.started)}" + (" (done)" if final else "")
            return f"{head}, teacher calls by stage: " + ", ".join(parts) + "".join(f"; {t}" for t in tail if t)

    def _eta(self, now: float) -> str:
        if not self.totals:
            return ""
        done = sum(self.done.values())
        left = sum(max(total - self.done.get(stage, 0), 0) for stage, total in self.totals.items())
        elapsed = now - self.started
        if not done or elapsed <= 0:
            return "ETA unknown until the first call returns"
        if not left:
            return "ETA: past the plan, retrying rejected candidates"
        return f"ETA at least {span(left / (done / elapsed))}"

    def emit(self, final: bool = False) -> None:
        print(self.line(final), file=self._stream or sys.stderr, flush=True)
        self.lines += 1

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            if self.lines:  # a run long enough to report on says when it is done; a short one stays quiet
                self.emit(final=True)


class StageProgress:
    """Bars in a terminal, plain lines in a log, nothing with --no-progress.

    `enabled`: None picks by stderr (a terminal: bars; else: lines); True forces bars; False turns both off.
    `totals` (expected_calls) and `leaves` make the lines say "of N" and an ETA; pass `leaf_done` as
    run_generation's `on_leaf_done` for the samples accepted so far.
    """

    def __init__(
        self,
        stages: list[str],
        enabled: bool | None = None,
        *,
        totals: dict[str, int] | None = None,
        leaves: int | None = None,
        interval: float | None = None,
    ):
        self._bars: dict[str, Any] = {}
        self._plain: PlainProgress | None = None
        if enabled is False:
            return
        if enabled is None and not sys.stderr.isatty():
            self._plain = PlainProgress(stages, totals, leaves, interval=interval).start()
            return
        from tqdm import tqdm

        self._bars = {
            stage: tqdm(
                desc=f"{stage:>16}",
                unit="call",
                total=(totals or {}).get(stage),
                position=n,
                leave=True,
                file=sys.stderr,
                dynamic_ncols=True,
            )
            for n, stage in enumerate(stages)
        }

    def advance(self, stage: str) -> None:
        if self._plain is not None:
            self._plain.advance(stage)
        bar = self._bars.get(stage)
        if bar is not None:
            bar.update(1)

    def leaf_done(self, result: object) -> None:
        if self._plain is not None:
            self._plain.leaf_done(result)

    def write(self, line: str) -> None:
        """A line on stderr (an endpoint's warning) that does not tear the bars."""
        if self._bars:
            from tqdm import tqdm

            tqdm.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._plain is not None:
            self._plain.close()
        for bar in self._bars.values():
            bar.close()
