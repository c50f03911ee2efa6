"""Read what `labtax generate` wrote and plan the LAB phases over it.

Each phase trains on its phase file (generate writes them: phases/knowledge_train_msgs.jsonl and
phases/skills_train_msgs.jsonl, labtax/mix/phases.py), the very file instructlab-training's `data_path` and
TRL's `load_dataset` read. Phase 1 ("knowledge"): knowledge samples closed-book and with their document chunk,
plus foundational skills. Phase 2 ("skills"): compositional skills plus a replay of phase 1's rows (the LAB
method's guard against forgetting), REPLAY_FRACTION of the phase's own samples, and any precomputed dataset
`labtax mix` added. A row whose kind is one of the phase's own (PHASES) is the phase's sample; any other
row in the file is replay: an earlier phase's sample, which keeps its leaf (its held-out seeds are scored as
"replayed"), or an external row (kind "external", leaf ""), which belongs to no leaf. The files are trained
as written, whichever phases --phases names and in whichever order.

Checked here, before torch is imported, so a wrong --data folder (or one an older labtax wrote, without
phases/ and eval/) fails in a fraction of a second with the fix in the message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from labtax.errors import LabtaxError
from labtax.mix import phases
from labtax.mix.recipe import EXTERNAL
from labtax.records import jsonl, messages
from labtax.records.layout import HELDOUT, LEGACY, PHASE_FILES, PHASES_DIR, Layout
from labtax.records.types import held_back_reason, read_run_summary

PHASES = phases.KINDS  # each phase's own kinds
FILES = {name: f"{PHASES_DIR}/{file}" for name, file in PHASE_FILES.items()}
REPLAY_FRACTION = phases.REPLAY_FRACTION  # replayed earlier-phase rows, as a fraction of the phase's own samples
OLD_LAYOUT = LEGACY  # top-level files of an output written before eval/, review/


@dataclass
class TrainData:
    phases: dict[str, list[dict]]  # the rows of each phase file, in file order
    heldout: list[dict]


@dataclass
class PhasePlan:
    name: str
    kinds: tuple[str, ...]
    samples: list[dict]  # the phase's own data
    replay: list[dict] = field(default_factory=list)  # earlier phases' rows and external rows in the phase file

    @property
    def own_leaves(self) -> list[str]:
        return sorted({s["leaf"] for s in self.samples})

    @property
    def replayed_leaves(self) -> list[str]:
        """Leaves whose samples are replayed (external rows have none), not trained as this phase's own."""
        return sorted({s["leaf"] for s in self.replay if s["leaf"]} - set(self.own_leaves))

    @property
    def external(self) -> int:
        return sum(1 for s in self.replay if s.get("kind") == EXTERNAL)


def _check_record(record, where: str, need_answer: bool) -> None:
    if not isinstance(record, dict):
        raise LabtaxError(f"{where}: expected a JSON object, got {type(record).__name__}; re-run `labtax generate`")
    problem = messages.problem(record.get("messages"), need_answer=need_answer)
    if problem is not None:
        raise LabtaxError(
            {
                messages.NO_LIST: f"{where}: no 'messages' list; is this a file `labtax generate` wrote?",
                messages.BAD_MESSAGE: f"{where}: each message needs a role (system/user/assistant) and string content",
                messages.NO_ANSWER: f"{where}: no assistant answer to train or evaluate on",
            }[problem[0]]
        )
    if not isinstance(record.get("kind"), str) or not record["kind"]:
        raise LabtaxError(f"{where}: missing 'kind' (knowledge, foundational, compositional or external)")
    leaf = record.get("leaf")
    if not isinstance(leaf, str) or (not leaf and record["kind"] != EXTERNAL):
        raise LabtaxError(f"{where}: missing 'leaf' (the leaf path the sample belongs to; \"\" only for external rows)")


def read_jsonl(path: Path) -> list[dict]:
    records: list[dict] = []
    with open(path, encoding="utf-8") as handle:
        for number, record in jsonl.rows(handle):
            if isinstance(record, jsonl.Damaged):
                raise LabtaxError(f"{path}:{number}: not valid JSON ({record.message}); re-run `labtax generate`")
            _check_record(record, f"{path}:{number}", need_answer=True)
            records.append(cast(dict, record))  # an object: _check_record said so
    return records


def load_data(data: Path, names: list[str] | tuple[str, ...] = tuple(PHASES)) -> TrainData:
    """The phase files `names` need and the held-out seeds, checked."""
    data = Path(data)
    if not data.is_dir():
        raise LabtaxError(f"no generated data at {data}/: run `labtax generate --output {data}` first")
    wanted = [FILES[name] for name in names] + [HELDOUT]
    missing = [name for name in wanted if not (data / name).is_file()]
    if missing and any((data / name).is_file() for name in OLD_LAYOUT):
        raise LabtaxError(
            f"{data}/ was written by an older labtax (heldout.jsonl at the top, no "
            f"{', '.join(missing)}): re-run `labtax generate --output {data}` to rewrite it in the current layout "
            "(its teacher calls are cached, so nothing is asked again)"
        )
    if missing:
        raise LabtaxError(
            f"{data}/ lacks {', '.join(missing)}: run `labtax generate --output {data}` first (it writes them all)"
        )
    return TrainData({name: read_jsonl(data / FILES[name]) for name in names}, read_jsonl(data / HELDOUT))


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


def plan_phases(data: TrainData, names: list[str]) -> list[PhasePlan]:
    """The phases in the order given: each phase file's own samples (its kinds) and its replay rows (the rest)."""
    plans = []
    for name in names:
        kinds = PHASES[name]
        rows = data.phases.get(name, [])
        plans.append(
            PhasePlan(name, kinds, [r for r in rows if r["kind"] in kinds], [r for r in rows if r["kind"] not in kinds])
        )
    return plans


def held_back(data: Path) -> tuple[int, str]:
    """How many accepted samples generate kept out of the training files as unvetted, and why (the leaves'
    reasons, from summary.json through the typed reader); (0, "") when the folder says nothing of them."""
    try:
        leaves = read_run_summary(Layout(data).summary)["leaves"].values()
    except (OSError, ValueError):
        return 0, ""
    held = [leaf for leaf in leaves if leaf.get("held_back")]
    return sum(leaf.get("held_back", 0) for leaf in held), "; ".join(sorted({held_back_reason(leaf) for leaf in held}))
