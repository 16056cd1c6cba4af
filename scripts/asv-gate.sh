#!/usr/bin/env bash
# PR regression gate: build BASE and HEAD in real asv environments, benchmark both, and fail
# when a gated benchmark got slower by more than the factor (or started failing).
#   scripts/asv-gate.sh BASE [HEAD]          HEAD defaults to the checked-out commit
#   ASV_GATE_FACTOR  slow-down that fails the gate (default 2.0: above the same-code noise measured
#                    on 2 cores with 4 interleaved rounds; see benchmarks/README.md)
#   ASV_GATE_BENCH   regex of the gated benchmarks (default: steady-state solve, one thread, N>=100)
# Exit status: 0 no regression, 1 a gated benchmark slowed by more than the factor, 2 a benchmark
# failed to run (asv's codes). The `asv compare` table goes to $GITHUB_STEP_SUMMARY when set.
set -euo pipefail
source "$(dirname "$0")/asv-common.sh"
base=${1:?usage: scripts/asv-gate.sh BASE [HEAD]}
head=${2:-HEAD}
factor=${ASV_GATE_FACTOR:-2.0}
bench=${ASV_GATE_BENCH:-"^bench_solve\.Solve\.time_descend\(.*, (100|1000), [23], 1\)$"}
base_hash=$(git rev-parse --verify "$base^{commit}")
head_hash=$(git rev-parse --verify "$head^{commit}")
echo "asv-gate: $head ($head_hash) against $base ($base_hash), factor $factor, benchmarks $bench"

status=0
"${asv[@]}" continuous --machine "$machine" --factor "$factor" --split --interleave-rounds -a rounds=4 \
  --bench "$bench" "$base_hash" "$head_hash" || status=$?

if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  {
    echo "## asv: $head against $base (fails above ${factor}x slower)"
    echo
    echo '```'
    "${asv[@]}" compare --machine "$machine" --factor "$factor" --split \
      -E "virtualenv" "$base_hash" "$head_hash" | grep -Ev '^\|[^|]*\| *n/a *\| *n/a *\|'
    echo '```'
    case $status in
      0) echo "No gated benchmark slowed by more than ${factor}x." ;;
      1) echo "**Regression:** a gated benchmark slowed by more than ${factor}x (marked +)." ;;
      *) echo "**A benchmark failed to run** (asv exit $status): see the job log." ;;
    esac
  } >> "$GITHUB_STEP_SUMMARY"
fi
exit "$status"
