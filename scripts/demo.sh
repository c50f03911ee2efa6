#!/usr/bin/env bash
# `make demo`: the main job end to end on the embedded default teacher, offline.
# lint -> generate (SmolLM2-135M on the CPU) -> train (phased LoRA smoke test) -> PR comment.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
OUT=${DEMO_OUTPUT:-generated}
N=${DEMO_SAMPLES:-2}  # 2 per leaf keeps the first run short on 2 cores; DEMO_SAMPLES=5 for more
unset OPENAI_BASE_URL OPENAI_API_KEY  # the demo always uses the embedded teacher

echo "== 1/4 lint the whole taxonomy"
$BIN/labtax lint --format text --output "$OUT/lint.json"

# One leaf of each kind (DEMO_LEAVES=all for every leaf): the whole gate as users get it, calibration on,
# inside the demo's few minutes on 2 cores.
LEAVES=${DEMO_LEAVES:-knowledge/science/biology/photosynthesis/qna.yaml foundational_skills/reasoning/logical/ordering/qna.yaml compositional_skills/writing/rewriting/plain_language/qna.yaml}
[ "$LEAVES" = all ] && LEAVES=
echo "== 2/4 generate $N samples per leaf with the embedded teacher (${LEAVES:-every leaf})"
# --max-attempts 2: at most 2 candidates per requested sample. The gate rejects much of what a 135M teacher
# writes; a leaf that falls short says so in the summary and the comment instead of the demo growing longer
# (DEMO_ATTEMPTS=4 for generate's default).
# shellcheck disable=SC2086  # LEAVES is a list of paths
$BIN/labtax generate -n "$N" --max-attempts "${DEMO_ATTEMPTS:-2}" --output "$OUT" $LEAVES

echo "== 3/4 phased training smoke test"
$BIN/labtax train --data "$OUT" --output "$OUT/train" --max-minutes "${DEMO_TRAIN_MINUTES:-3}"

echo "== 4/4 pull-request comment"
$BIN/labtax comment --summary "$OUT/summary.json" --train-report "$OUT/train/train_report.json" --lint-report "$OUT/lint.json" --output "$OUT/comment.md"
echo "comment written to $OUT/comment.md"
$BIN/python -c 'import json, sys; print("training verdict:", json.load(open(sys.argv[1]))["verdict_line"])' "$OUT/train/train_report.json"
