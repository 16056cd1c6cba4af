#!/usr/bin/env bash
# The pull request's benchmark job (pr-benchmarks.yml): the gate, the informational rows and
# the report that pr-comment.yml posts on the PR.
#
#   scripts/ci-pr-benchmarks.sh [MERGE]
#
# MERGE (default $MERGE_SHA, else HEAD) is the commit as it would land: on a pull_request run,
# GitHub's merge commit (github.sha). It is measured against its first parent, the base branch
# as it is now, so a PR that is behind main is not charged with main's own changes. Both
# commits are measured by the merge commit's suite (asv runs one suite over every commit).
#   1. scripts/asv-gate.sh FIRST-PARENT MERGE decides: exit 0 pass, 1 regression (a row slower
#      than its limit, or one the base measured that the merge commit did not run), 2 something
#      failed to run; its summary is kept and also added to the job summary.
#   2. The informational benchmarks (ASV_INFO_BENCH, default threads=2 solves, start-up and
#      memory; scripts/ci-pr-comment.py) are measured on both commits; they never fail the job.
#   3. ASV_PR_DIR (default .asv/pr) receives pr.json, gate-status, gate.md, info-status,
#      compare.txt (asv compare of the two commits), comment.md and results/ (both commits'
#      asv results): the asv-pr artifact.
#   PR_NUMBER, PR_HEAD_SHA, RUN_URL   recorded in pr.json for the comment (set by the workflow)
# Exits with the gate's status.
set -euo pipefail
source "$(dirname "$0")/asv-common.sh"
merge=${1:-${MERGE_SHA:-HEAD}}
merge_hash=$(git rev-parse --verify "$merge^{commit}")
base_hash=$(git rev-parse --verify "$merge_hash^1^{commit}")
out=${ASV_PR_DIR:-.asv/pr}
info=${ASV_INFO_BENCH:-'^bench_solve\.Solve\.time_descend\(.*, 2\)$|^bench_startup\.|^bench_memory\.'}
export ASV_INFO_BENCH=$info
rm -rf "$out"
mkdir -p "$out/results/$machine"
echo "ci-pr-benchmarks: ${merge_hash:0:12} against its first parent ${base_hash:0:12} on $machine"

"$python" - "$out/pr.json" "${PR_NUMBER:-0}" "${PR_HEAD_SHA:-}" "$merge_hash" "$base_hash" \
  "$machine" "${RUN_URL:-}" <<'PY'
import json, sys
path, number, head, merge, base, machine, run_url = sys.argv[1:]
json.dump({"number": int(number or 0), "head": head, "merge": merge, "base": base,
           "machine": machine, "run_url": run_url}, open(path, "w"), indent=1)
PY

status=0
GITHUB_STEP_SUMMARY="$PWD/$out/gate.md" scripts/asv-gate.sh "$base_hash" "$merge_hash" || status=$?
echo "$status" > "$out/gate-status"
echo "ci-pr-benchmarks: gate exit status $status"

info_status=0
printf '%s\n' "$base_hash" "$merge_hash" > "$out/commits.txt"
"${asv[@]}" run --machine "$machine" --show-stderr --bench "$info" "HASHFILE:$out/commits.txt" \
  || info_status=$?
echo "$info_status" > "$out/info-status"
"${asv[@]}" compare --machine "$machine" --split "$base_hash" "$merge_hash" > "$out/compare.txt" 2>&1 || true
cp .asv/results/benchmarks.json "$out/results/" 2>/dev/null || true
cp ".asv/results/$machine/machine.json" "$out/results/$machine/" 2>/dev/null || true
for hash in "$base_hash" "$merge_hash"; do
  cp ".asv/results/$machine/${hash:0:8}"-*.json "$out/results/$machine/" 2>/dev/null || true
done
# The gate measures into its own folder (ASV_GATE_DIR, scripts/asv-gate.sh): its rows travel too.
cp -r "${ASV_GATE_DIR:-.asv/gate}/results" "$out/gate-results" 2>/dev/null || true

"$python" scripts/ci-pr-comment.py build "$out"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  sed 1d "$out/comment.md" >> "$GITHUB_STEP_SUMMARY"  # the comment, less its marker line
else
  cat "$out/comment.md"
fi
exit "$status"
