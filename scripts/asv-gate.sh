#!/usr/bin/env bash
# PR regression gate: build BASE and HEAD in real asv environments, measure both, and fail when a
# deterministic count rose by more than 5% or a gated wall-time benchmark by more than the wall
# factor. Locally and in CI alike it prints the comparison table (only what this run measured:
# asv writes to a fresh results folder) and a one-line summary.
#   scripts/asv-gate.sh BASE [HEAD]     HEAD defaults to the checked-out commit
#   ASV_GATE_FACTOR        wall-time slow-down that fails (default 2.0: above the same-code noise
#                          measured on 2 shared cores; see benchmarks/README.md)
#   ASV_GATE_COUNT_FACTOR  count rise that fails (default 1.05)
#   ASV_GATE_BENCH         regex of the gated wall-time benchmarks (default: steady-state solve,
#                          one thread, N >= 100, every backend but JAX's: see benchmarks/README.md)
#   ASV_GATE_COUNT_BENCH   regex of the counted tracks (default all of bench_counted; empty: none,
#                          e.g. where valgrind cannot be installed)
#   ASV_GATE_DIR           this run's folder (default .asv/gate, emptied first): asv.conf.json
#                          with results_dir and html_dir pointed here, results/ (only this run's
#                          results of both commits), summary.md (the table and summary)
# Exit status: 0 no regression; 1 a regression (named in the summary); 2 something failed to run
# (a commit that did not build, a benchmark that failed on HEAD, counts that did not run); a
# failed build is never called a regression. The table and summary also go to
# $GITHUB_STEP_SUMMARY when it is set.
set -euo pipefail
source "$(dirname "$0")/asv-common.sh"
base=${1:?usage: scripts/asv-gate.sh BASE [HEAD]}
head=${2:-HEAD}
wall_factor=${ASV_GATE_FACTOR:-2.0}
count_factor=${ASV_GATE_COUNT_FACTOR:-1.05}
wall_bench=${ASV_GATE_BENCH:-"^bench_solve\.Solve\.time_descend\('(?!jax)[^']*', (100|1000), [23], 1\)$"}
count_bench=${ASV_GATE_COUNT_BENCH-"^bench_counted\."}
base_hash=$(git rev-parse --verify "$base^{commit}")
head_hash=$(git rev-parse --verify "$head^{commit}")
echo "asv-gate: $head ($head_hash) against $base ($base_hash)"
echo "asv-gate: counts fail above ${count_factor}x ($count_bench), wall time above ${wall_factor}x ($wall_bench)"
if [ "$base_hash" = "$head_hash" ]; then
  echo "asv-gate: BASE and HEAD are the same commit: nothing to compare (on main, compare a" \
       "branch with it: scripts/asv-gate.sh main my-branch)"
  exit 0
fi

work=${ASV_GATE_DIR:-.asv/gate}
rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
# This run's own results folder (nothing left over from earlier runs); environments and built
# wheels are shared with other runs through the usual env_dir. {conf_dir} in the commands is
# this checkout, as in asv.conf.json itself.
"$python" - "$work" <<'PY'
import json, os, sys
work = sys.argv[1]
root = os.getcwd()
config = json.load(open("asv.conf.json"))
for key in ("build_command", "install_command", "uninstall_command"):
    if key in config:
        config[key] = [command.replace("{conf_dir}", root) for command in config[key]]
config.update(repo=root, benchmark_dir=os.path.join(root, config["benchmark_dir"]),
              env_dir=os.path.join(root, config["env_dir"]),
              results_dir=os.path.join(work, "results"), html_dir=os.path.join(work, "html"))
json.dump(config, open(os.path.join(work, "asv.conf.json"), "w"), indent=1)
PY
printf '%s\n%s\n' "$base_hash" "$head_hash" > "$work/commits"
run=("${asv[@]}" run --config "$work/asv.conf.json" --machine "$machine" --show-stderr "HASHFILE:$work/commits")

# Wall time: rounds interleaved across the two commits, so a busy spell hits both.
"${run[@]}" --interleave-rounds -a rounds=4 --bench "$wall_bench" || echo "asv-gate: asv run (wall time) exited $?"
if [ -n "$count_bench" ]; then
  # Counts: one valgrind run per backend and commit (no rounds: they are deterministic).
  "${run[@]}" --bench "$count_bench" || echo "asv-gate: asv run (counts) exited $?"
fi

status=0
report=$("$python" scripts/asv-gate-verdict.py "$work/results" "$machine" "$base_hash" "$head_hash" \
  "$wall_factor" "$count_factor" "$count_bench") || status=$?
printf '## asv gate: %s (%s) against %s (%s), exit %s\n\n%s\n' "$head" "${head_hash:0:8}" \
  "$base" "${base_hash:0:8}" "$status" "$report" > "$work/summary.md"
echo
cat "$work/summary.md"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  cat "$work/summary.md" >> "$GITHUB_STEP_SUMMARY"
fi
exit "$status"
