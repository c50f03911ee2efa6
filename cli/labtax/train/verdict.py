"""From numbers to a verdict: did each phase's data lower the held-out answer loss of its own leaves?

A phase "learned" when the mean (over its own leaves, each leaf weighted equally) held-out answer loss
after the phase is lower than before it by at least MIN_DROP nats; evaluation is deterministic, so any
drop is real, and MIN_DROP only keeps rounding-level changes from counting. Replayed leaves are not
judged (their data is not new to the phase); their change is reported as the forgetting check.
The run "learned" only when every phase that trained and could be judged learned.
"""

from __future__ import annotations

from labtax.wording import counted

LEARNED, DID_NOT_LEARN, NO_DATA, STOPPED = "learned", "did not learn", "no data", "stopped at time budget"
MIN_DROP = 1e-3


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def phase_means(phase: dict, leaves: list[str]) -> tuple[float | None, float | None]:
    rows = [phase["heldout"][leaf] for leaf in leaves if leaf in phase["heldout"]]
    rows = [r for r in rows if r.get("loss_before") is not None and r.get("loss_after") is not None]
    return mean([r["loss_before"] for r in rows]), mean([r["loss_after"] for r in rows])


def phase_verdict(phase: dict) -> str:
    if not phase["samples"]:
        return NO_DATA
    if phase["stopped_at_budget"]:
        return STOPPED
    before, after = phase_means(phase, phase["own_leaves"])
    if before is None or after is None:
        return NO_DATA
    return LEARNED if after <= before - MIN_DROP else DID_NOT_LEARN


def run_verdict(phases: list[dict]) -> str:
    verdicts = [p["verdict"] for p in phases]
    if STOPPED in verdicts:
        return STOPPED
    judged = [v for v in verdicts if v in (LEARNED, DID_NOT_LEARN)]
    if not judged:
        return NO_DATA
    return LEARNED if all(v == LEARNED for v in judged) else DID_NOT_LEARN


def _change(before, after) -> str:
    if before is None or after is None:
        return "no held-out numbers"
    pct = f" ({(after - before) / before:+.1%})" if before else ""
    return f"{before:.3f} -> {after:.3f}{pct}"


FEW_SAMPLES = 200  # below this many samples in all, a phase's loss moves by chance as much as by the data


def too_few(verdict: str, phases: list[dict]) -> str:
    """Why a run on a handful of samples did not learn, in plain words, and what would change it ('' otherwise)."""
    samples = sum(p["samples"] for p in phases)
    if verdict != DID_NOT_LEARN or samples >= FEW_SAMPLES:
        return ""
    return (
        f". {counted(samples, 'vetted sample')} are too few to move the model: this run shows that the files "
        "train, not whether the data helps; hundreds of vetted samples per phase (more -n, a stronger teacher "
        "with --base-url) would"
    )


def verdict_line(verdict: str, phases: list[dict]) -> str:
    """One line with the numbers, e.g. for a CI log or the PR comment."""
    parts = []
    for p in phases:
        if not p["samples"]:
            parts.append(f"{p['name']}: no data")
            continue
        before, after = phase_means(p, p["own_leaves"])
        leaves = sum(1 for leaf in p["own_leaves"] if leaf in p["heldout"])
        text = f"{p['name']} {_change(before, after)} over {counted(leaves, 'leaf')}, {p['steps']} steps in {p['seconds']:.0f}s"
        if p["verdict"] == STOPPED:
            text += " (stopped at the time budget)"
        if p.get("forgetting"):
            f = p["forgetting"]
            text += f", replayed leaves {_change(f['loss_before'], f['loss_after'])}"
        parts.append(text)
    return f"{verdict}: held-out answer loss " + "; ".join(parts) + too_few(verdict, phases)
