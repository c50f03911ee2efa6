"""The LAB phase files of an output folder: what `labtax generate` (and `labtax merge`) write under phases/
and what `labtax train`, instructlab-training (`data_path`, one file) and TRL read.

LAB trains in phases. Phase 1, knowledge: the knowledge samples twice, closed-book (knowledge.jsonl) and as
reading comprehension with their document chunk (knowledge_with_context.jsonl), as LAB and InstructLab train on
both, plus the foundational-skill samples. Phase 2, skills: the compositional samples plus a replay of phase 1's
rows, REPLAY_FRACTION (0.3) times as many as the phase's own samples (at least one, at most all of phase 1),
so phase 2 does not simply overwrite phase 1. Replay rows keep their kind (knowledge, foundational, or
"external" for rows of a precomputed dataset that `labtax mix` added), which is how `labtax train` tells
replay from the phase's own samples.

Each phase is written as a recipe (phases/<phase>_recipe.yaml, InstructLab's format, paths relative to the
recipe) and the file it mixes to (phases/<phase>_train_msgs.jsonl): `labtax mix phases/skills_recipe.yaml
--output phases/skills_train_msgs.jsonl` rebuilds the file byte for byte, and a copy of the recipe with one
more dataset is how a precomputed replay dataset is mixed in. Mixing is seeded (SEED), so identical bucket
files give identical phase files; `labtax merge` therefore still gives a single run's bytes.

The output folder's layout beside the phase files: eval/heldout.jsonl (held-out seeds, never trained on) and
review/rejected.jsonl (rejected candidates), out of reach of a `generated/*.jsonl` glob for training data.
"""

from __future__ import annotations

from pathlib import Path

from labtax.fileio import write_text_atomic
from labtax.mix.recipe import Dataset, dump_recipe, jsonl, load_recipe, mix
from labtax.records.layout import HELDOUT, PHASES_DIR, REVIEW_REJECTED, WITH_CONTEXT, Layout
from labtax.records.layout import PHASE_FILES as FILES
from labtax.records.layout import RECIPES as RECIPES

REJECTED = REVIEW_REJECTED
KINDS = {"knowledge": ("knowledge", "foundational"), "skills": ("compositional",)}  # each phase's own samples
__all__ = ["FILES", "HELDOUT", "KINDS", "PHASES_DIR", "RECIPES", "REJECTED", "WITH_CONTEXT", "write_phases"]
REPLAY_FRACTION = 0.3  # replayed earlier-phase rows, as a fraction of the phase's own samples
SEED = 0


def replay_count(own: int, earlier: int, fraction: float = REPLAY_FRACTION) -> int:
    """How many earlier-phase rows a phase with `own` samples replays (none when either side is empty)."""
    return min(earlier, max(1, round(fraction * own))) if own and earlier else 0


def _rows(path: Path) -> int:
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def write_phases(output: Path) -> dict[str, int]:
    """Write both recipes and their mixed files under output/phases/ from the bucket files already written
    there; returns the rows per phase file."""
    layout = Layout(output)
    folder = layout.phases
    knowledge = [
        Dataset("../knowledge.jsonl", 1.0),
        Dataset(f"../{WITH_CONTEXT}", 1.0),
        Dataset("../foundational.jsonl", 1.0),
    ]
    counts = {"knowledge": _write(folder, "knowledge", knowledge, _KNOWLEDGE_NOTE)}
    own = _rows(layout.bucket("compositional"))
    replay = replay_count(own, counts["knowledge"])
    skills = [Dataset("../compositional.jsonl", 1.0), Dataset(FILES["knowledge"], replay)]
    note = _SKILLS_NOTE.format(replay=replay, own=own, fraction=REPLAY_FRACTION)
    counts["skills"] = _write(folder, "skills", skills, note)
    return counts


def _write(folder: Path, phase: str, datasets: list[Dataset], note: str) -> int:
    path = folder / RECIPES[phase]
    write_text_atomic(path, dump_recipe(datasets, note))
    rows = mix(load_recipe(path), SEED)  # through the file just written: the recipe is the truth
    write_text_atomic(folder / FILES[phase], jsonl(rows))
    return len(rows)


_KNOWLEDGE_NOTE = """\
LAB phase 1 (knowledge), written by `labtax generate`: knowledge samples closed-book and with their
document chunk, plus foundational skills. Rebuilt by every generate run; edit a copy, not this file.
Mix: labtax mix phases/knowledge_recipe.yaml --output phases/knowledge_train_msgs.jsonl"""

_SKILLS_NOTE = """\
LAB phase 2 (skills), written by `labtax generate`: compositional skills plus a replay of phase 1
({replay} rows = {fraction} x {own} compositional samples). Rebuilt by every generate run; to replay a
precomputed dataset too, copy this file beside it (paths are relative to the recipe), add
`- path: /abs/path/community.jsonl` with `sampling_size: 1.0` (or a number of rows), and run:
labtax mix phases/my_recipe.yaml --output my_skills_train_msgs.jsonl"""
