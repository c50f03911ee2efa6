#!/usr/bin/env bash
# The generate job of .github/workflows/generate.yml, as one script so that it runs the same locally:
#   labtax diff -> labtax lint --changed -> labtax generate --changed -> labtax train -> labtax comment
#
#   BASE_REF=origin/main NUM_SAMPLES=2 .github/scripts/pr-pipeline.sh
#
# Settings (environment):
#   BASE_REF            the branch the pull request merges into (default: origin/main)
#   NUM_SAMPLES         accepted samples wanted per changed leaf (default: 4)
#   OUTPUT              folder for diff.json, lint.json, the generated data and train/ (default: generated)
#   COMMENT             where the rendered pull-request comment goes (default: comment.md)
#   TRAIN               1 = run the training smoke test, 0 = skip it (default: 1)
#   TRAIN_MAX_MINUTES   time limit handed to `labtax train --max-minutes` (default: 20)
#   LABTAX              the labtax executable (default: labtax on PATH)
#   OPENAI_BASE_URL, OPENAI_API_KEY
#                       a teacher endpoint; empty or unset = the embedded teacher. Pull requests from
#                       forks get no secrets, so there they are empty.
#
# Exit status: 0 when every stage passed (or no leaf changed); otherwise the first failing stage's
# status. The comment is still rendered whenever generate wrote a summary, so a failing pull request
# gets told why.
set -euo pipefail

BASE_REF="${BASE_REF-origin/main}"  # set but empty is an error, not the default
NUM_SAMPLES="${NUM_SAMPLES:-4}"
OUTPUT="${OUTPUT:-generated}"
COMMENT="${COMMENT:-comment.md}"
TRAIN="${TRAIN:-1}"
TRAIN_MAX_MINUTES="${TRAIN_MAX_MINUTES:-20}"
LABTAX="${LABTAX:-labtax}"

die() { echo "pr-pipeline: error: $*" >&2; exit 2; }
log() { echo "pr-pipeline: $*" >&2; }

[[ -n "$BASE_REF" ]] || die "BASE_REF is empty; set it to the pull request's base, e.g. origin/main"
[[ "$NUM_SAMPLES" =~ ^[1-9][0-9]*$ ]] || die "NUM_SAMPLES='$NUM_SAMPLES' is not a positive integer"
[[ "$TRAIN_MAX_MINUTES" =~ ^[1-9][0-9]*$ ]] || die "TRAIN_MAX_MINUTES='$TRAIN_MAX_MINUTES' is not a positive integer"
[[ "$TRAIN" == 0 || "$TRAIN" == 1 ]] || die "TRAIN='$TRAIN' must be 0 or 1"
command -v "$LABTAX" >/dev/null || die "'$LABTAX' not found; install labtax (pip install '.[local,train]') or set LABTAX"

# An endpoint secret that is absent arrives as an empty string: that means the embedded teacher.
if [[ -z "${OPENAI_BASE_URL:-}" ]]; then
  unset OPENAI_BASE_URL OPENAI_API_KEY
  log "teacher: embedded (no OPENAI_BASE_URL)"
else
  log "teacher: endpoint from OPENAI_BASE_URL"
fi

mkdir -p "$OUTPUT"
rm -f "$COMMENT"

# 1. Which leaves changed. Deleted leaves are not listed, so an empty list means nothing to generate.
"$LABTAX" diff --base "$BASE_REF" --format json >"$OUTPUT/diff.json"
"$LABTAX" diff --base "$BASE_REF" >&2
changed=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["leaves"]))' "$OUTPUT/diff.json")
if [[ "$changed" == 0 ]]; then
  log "no leaf changed against $BASE_REF; nothing to generate"
  exit 0
fi

status=0
stage() {  # stage NAME CMD...: run a stage, remember the first failure, never stop the script here
  local rc=0
  log "== $1"
  shift
  "$@" || rc=$?
  if [[ "$rc" != 0 ]]; then
    log "stage failed with exit status $rc"
    [[ "$status" != 0 ]] || status=$rc
  fi
  return 0
}

# 2. Lint exactly the changed leaves; the JSON report goes into the comment. generate skips leaves
#    with lint errors on its own, so a broken leaf does not stop the others.
stage lint "$LABTAX" lint --changed --base "$BASE_REF" --format text --output "$OUTPUT/lint.json"

# 3. Generate for the changed leaves.
stage generate "$LABTAX" generate --changed --base "$BASE_REF" --num-samples "$NUM_SAMPLES" --output "$OUTPUT"
if [[ ! -f "$OUTPUT/summary.json" ]]; then
  log "generate wrote no $OUTPUT/summary.json; no comment to render"
  [[ "$status" != 0 ]] || status=1
  exit "$status"
fi

# 4. The training smoke test on what was generated.
train_args=()
if [[ "$TRAIN" == 1 ]]; then
  stage train "$LABTAX" train --data "$OUTPUT" --output "$OUTPUT/train" --max-minutes "$TRAIN_MAX_MINUTES"
  if [[ -f "$OUTPUT/train/train_report.json" ]]; then
    train_args=(--train-report "$OUTPUT/train/train_report.json")
  fi
fi

# 5. The pull-request comment (posted by the separate comment workflow, never from here).
lint_args=()
[[ ! -f "$OUTPUT/lint.json" ]] || lint_args=(--lint-report "$OUTPUT/lint.json")
stage comment "$LABTAX" comment --summary "$OUTPUT/summary.json" "${train_args[@]}" "${lint_args[@]}" --output "$COMMENT"

log "done: $changed changed leaf/leaves, comment in $COMMENT, exit status $status"
exit "$status"
