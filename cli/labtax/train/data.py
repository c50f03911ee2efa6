"""Read what `labtax generate` wrote and plan the LAB phases over it.

Phase 1 ("knowledge") trains on knowledge and foundational-skill samples; phase 2 ("skills") on
compositional skills plus a replay sample of what earlier phases trained on, so phase 2 does not simply
overwrite phase 1 (the LAB method's guard against forgetting). Checked here, before torch is imported, so
a wrong --data folder fails in a fraction of a second with the fix in the message.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from labtax.errors import LabtaxError

BUCKETS = ("knowledge", "foundational", "compositional")
HELDOUT = "heldout.jsonl"
PHASES = {"knowledge": ("knowledge", "foundational"), "skills": ("compositional",)}
REPLAY_FRACTION = 0.3  # replayed earlier-phase samples, as a fraction of the phase's own samples
ROLES = {"system", "user", "assistant"}


@dataclass
class TrainData:
    buckets: dict[str, list[dict]]
    heldout: list[dict]


@dataclass
class PhasePlan:
    name: str
    kinds: tuple[str, ...]
    samples: list[dict]  # the phase's own data
    replay: list[dict] = field(default_factory=list)  # sampled from earlier phases of this run

    @property
    def own_leaves(self) -> list[str]:
        return sorted({s["leaf"] for s in self.samples})


def _check_record(record, where: str, need_answer: bool) -> None:
    if not isinstance(record, dict):
        raise LabtaxError(f"{where}: expected a JSON object, got {type(record).__name__}; re-run `labtax generate`")
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        raise LabtaxError(f"{where}: no 'messages' list; is this a file `labtax generate` wrote?")
    for message in messages:
        if (
            not isinstance(message, dict)
            or message.get("role") not in ROLES
            or not isinstance(message.get("content"), str)
        ):
            raise LabtaxError(f"{where}: each message needs a role (system/user/assistant) and string content")
    if need_answer and not any(m["role"] == "assistant" and m["content"].strip() for m in messages):
        raise LabtaxError(f"{where}: no assistant answer to train or evaluate on")
    if not isinstance(record.get("leaf"), str) or not record["leaf"]:
        raise LabtaxError(f"{where}: missing 'leaf' (the leaf path the sample belongs to)")


def read_jsonl(path: Path) -> list[dict]:
    records = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise LabtaxError(f"{path}:{number}: not valid JSON ({exc.msg}); re-run `labtax generate`") from None
            _check_record(record, f"{path}:{number}", need_answer=True)
            records.append(record)
    return records


def load_data(data: Path) -> TrainData:
    data = Path(data)
    if not data.is_dir():
        raise LabtaxError(f"no generated data at {data}/: run `labtax generate --output {data}` first")
    missing = [name for name in (*(f"{b}.jsonl" for b in BUCKETS), HELDOUT) if not (data / name).is_file()]
    if missing:
        raise LabtaxError(
            f"{data}/ lacks {', '.join(missing)}: run `labtax generate --output {data}` first (it writes them all)"
        )
    buckets = {bucket: read_jsonl(data / f"{bucket}.jsonl") for bucket in BUCKETS}
    return TrainData(buckets, read_jsonl(data / HELDOUT))


def parse_phases(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in PHASES]
    if unknown or not names:
        raise LabtaxError(
            f"unknown phase(s) {', '.join(unknown) or '(none)'}: use a comma-separated list of {', '.join(PHASES)}"
        )
    if len(set(names)) != len(names):
        raise LabtaxError(f"--phases names a phase twice: {text}")
    return names


def plan_phases(
    data: TrainData, names: list[str], seed: int, replay_fraction: float = REPLAY_FRACTION
) -> list[PhasePlan]:
    """The phases in the order given; each later phase replays a seeded sample of the earlier ones' data."""
    rng = random.Random(seed)
    plans: list[PhasePlan] = []
    earlier: list[dict] = []
    for name in names:
        kinds = PHASES[name]
        samples = [s for kind in kinds for s in data.buckets.get(kind, [])]
        replay = []
        if earlier and samples:
            count = min(len(earlier), max(1, round(replay_fraction * len(samples))))
            replay = rng.sample(earlier, count)
        plans.append(PhasePlan(name, kinds, samples, replay))
        earlier += samples
    return plans
