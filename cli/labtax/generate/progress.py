"""Progress per pipeline stage, where people look, so an hour-long run is never silent.

In a terminal: one tqdm bar per stage, as before. Without one (a CI log such as GitHub Actions', where
bars either vanish or print a carriage-return mess): a plain line on stderr about every 10 s (set
LABTAX_PROGRESS_INTERVAL, in seconds, to change it), with each stage's calls done out of the planned
ones, its rate, the samples accepted so far when finished leaves report them, and an ETA.

The planned calls (`expected_calls`) are the fewest a run makes: one candidate per requested sample. A call
is counted against the plan only when it is for one of those first candidates (its index is below the samples
asked per leaf); a rejected candidate's replacement is a retry and the gate's extra calls (calibration on the
held-out seeds, consistency resamples) are checks, each shown as such ("question 12/12 +3 retries"), so a count
never passes its total. The ETA is shown only once it means something: a tenth of the planned calls done (and
at least MIN_ETA_CALLS), the rest scaled by the retries and checks seen per planned call so far.
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
ETA_FRACTION = 0.1  # of the planned calls done before an ETA is shown
MIN_ETA_CALLS = 5
# Candidate indexes from here on are the gate's checks, not candidates: consistency resamples (index + k x
# 500,000, gate/consistency.py) and calibration (from CALIBRATION_INDEX, 1,000,000).
CHECK_INDEXES = 500_000


class Plan(dict[str, int]):
    """The planned calls by stage, and the samples per leaf they are planned for (`samples`): a call for a
    candidate numbered at or past it is a retry."""

    samples: int | None = None


def expected_calls(leaves: Iterable[Any], num_samples: int) -> Plan:
    """The teacher calls each stage makes if every first candidate is accepted: a progress line's "of N"."""
    from labtax.generate.pipelines import pipeline_for

    totals = Plan()
    totals.samples = num_samples
    for leaf in leaves:
        for stage in pipeline_for(leaf).STAGES:
            totals[stage] = totals.get(stage, 0) + num_samples
    return totals


def call_kind(index: int | None, samples: int | None) -> str:
    """ "plan" (a first candidate's call), "retry" (a rejected candidate's replacement) or "check" (the gate's)."""
    if index is None or samples is None:
        return "plan"
    if index >= CHECK_INDEXES:
        return "check"
    return "plan" if index < samples else "retry"


def extra_text(retries: int, checks: int) -> str:
    """ " +3 retries +1 check": the calls beyond the plan, said as what they are."""
    parts = []
    if retries:
        parts.append(f"+{retries} {'retry' if retries == 1 else 'retries'}")
    if checks:
        parts.append(f"+{checks} {'check' if checks == 1 else 'checks'}")
    return "".join(f" {part}" for part in parts)


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
        self.samples = getattr(totals, "samples", None)  # expected_calls' Plan knows; a plain dict does not
        self.leaves = leaves
        self.interval = interval if interval is not None else interval_from_env()
        self._stream = stream
        self._clock = clock
        self._lock = threading.Lock()
        self.started = clock()
        self.done = dict.fromkeys(self.stages, 0)  # every call of the stage
        self.retries = dict.fromkeys(self.stages, 0)
        self.checks = dict.fromkeys(self.stages, 0)
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

    def advance(self, stage: str, index: int | None = None) -> None:
        """A call of `stage` returned; `index` is its candidate's (the runner's), None when not known."""
        with self._lock:
            if stage not in self.done:
                self.stages.append(stage)
                self.done[stage] = self.retries[stage] = self.checks[stage] = 0
            self.done[stage] += 1
            kind = call_kind(index, self.samples)
            if kind == "retry":
                self.retries[stage] += 1
            elif kind == "check":
                self.checks[stage] += 1
            self.first.setdefault(stage, self._clock())

    def _counts(self, stage: str) -> tuple[int, int, int]:
        """(planned calls done, retries, checks) of a stage; planned ones past the plan count as retries."""
        retries, checks = self.retries[stage], self.checks[stage]
        planned = self.done[stage] - retries - checks
        total = self.totals.get(stage)
        if total and planned > total:
            retries, planned = retries + planned - total, total
        return planned, retries, checks

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
                if total:
                    planned, retries, checks = self._counts(stage)
                    text = f"{stage} {planned}/{total}{extra_text(retries, checks)}"
                else:
                    text = f"{stage} {done}"
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
        """About how long the rest takes, once enough is done to say: the planned calls left, times the calls
        each planned call has cost so far (its retries and checks), at the run's rate. Else nothing."""
        if not self.totals:
            return ""
        planned_total = sum(self.totals.values())
        planned = sum(self._counts(stage)[0] for stage in self.totals if stage in self.done)
        left = planned_total - planned
        if not left:
            return "planned calls done, retrying rejected candidates"
        elapsed = now - self.started
        if planned < max(MIN_ETA_CALLS, ETA_FRACTION * planned_total) or elapsed <= 0:
            return ""
        calls = sum(self.done.values())
        remaining = left * calls / planned  # every planned call left costs what one has cost so far
        return f"ETA about {span(remaining / (calls / elapsed))}"

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
        self._samples = getattr(totals, "samples", None)
        self._extra: dict[str, list[int]] = {}  # per stage, for the bars: [retries, checks]
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

    def advance(self, stage: str, index: int | None = None) -> None:
        if self._plain is not None:
            self._plain.advance(stage, index)
        bar = self._bars.get(stage)
        if bar is None:
            return
        kind = call_kind(index, self._samples)
        if kind == "plan" and (bar.total is None or bar.n < bar.total):
            bar.update(1)
            return
        extra = self._extra.setdefault(stage, [0, 0])
        extra[0 if kind != "check" else 1] += 1
        bar.set_postfix_str(extra_text(*extra).strip())

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
