#!/usr/bin/env bash
# scripts/step.sh CMD [ARG...]: run one set-up step of `make demo` / `make models`, then print how long it
# took and append it to $FACEVLM_HOME/run/steps.tsv (what `scripts/step.sh --summary` prints at the end).
# Why: the first run from a fresh clone takes tens of minutes; a time per step shows where they go.
set -uo pipefail
LOG=${FACEVLM_HOME:-$HOME/.cache/facevlm}/run/steps.tsv
if [[ ${1:-} == --reset ]]; then mkdir -p "$(dirname "$LOG")"; : > "$LOG"; exit 0; fi
if [[ ${1:-} == --summary ]]; then
  [[ -s $LOG ]] || exit 0
  echo "Set-up steps this run (seconds):"
  awk -F'\t' '{ printf "  %8.1f  %s\n", $1, $2; total += $1 } END { printf "  %8.1f  total\n", total }' "$LOG"
  exit 0
fi
start=$(date +%s.%N)
"$@"
rc=$?
seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
mkdir -p "$(dirname "$LOG")"
printf '%s\t%s\n' "$seconds" "$*" | sed "s|$HOME|~|g" >> "$LOG"
printf '[%s s] %s%s\n' "$seconds" "$*" "$([[ $rc == 0 ]] || echo "  (failed: exit $rc)")" >&2
exit $rc
