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
#   ASV_GATE_DIR           this run's folder (default .asv/gate, emptied first): head-suite/ and
#                          base-suite/ (each commit's benchmarks/ as committed), head.conf.json
#                          and base.conf.json (asv.conf.json pointed at them and at this folder),
#                          results/ (only this run's results of both commits, and HEAD's suite
#                          listing), base-suite/results/benchmarks.json (BASE's suite listing),
#                          summary.md (the table and summary)
# HEAD's suite, as committed, measures both commits (asv runs one suite over every commit it
# measures); BASE's suite is only listed, so the rows HEAD's suite no longer has (a backend or
# parameter removed on purpose) are named apart instead of counted as lost.
# Exit status: 0 no regression; 1 a regression: a row above its limit, or a row BASE measured
# that HEAD skipped or failed (a backend that no longer loads is not a pass); 2 something failed
# to run (asv itself, a commit that did not build, a row only HEAD failed, a backend whose wall
# time was compared but not its counts); a failed build is never called a regression. Every
# asv command's exit status goes to the verdict (scripts/asv-gate-verdict.py). The table and
# summary also go to $GITHUB_STEP_SUMMARY when it is set.
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
suite_of() {  # SIDE HASH: that commit's benchmarks/ as committed, into $work/SIDE-suite
  mkdir -p "$work/$1-suite"
  git archive "$2" benchmarks | tar -x -C "$work/$1-suite"
}
suite_of base "$base_hash"
suite_of head "$head_hash"
# One asv configuration per suite: this checkout's, with the suite, results_dir and html_dir
# pointed into this run's folder (nothing left over from earlier runs); environments and built
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
config.update(repo=root, env_dir=os.path.join(root, config["env_dir"]))
for side, results in (("head", "results"), ("base", "base-suite/results")):
    config.update(benchmark_dir=os.path.join(work, f"{side}-suite", "benchmarks"),
                  results_dir=os.path.join(work, results), html_dir=os.path.join(work, "html"))
    json.dump(config, open(os.path.join(work, f"{side}.conf.json"), "w"), indent=1)
PY
printf '%s\n%s\n' "$base_hash" "$head_hash" > "$work/commits"
run=("${asv[@]}" run --config "$work/head.conf.json" --machine "$machine" --show-stderr "HASHFILE:$work/commits")
statuses=()
asv_status() {  # NAME COMMAND...: run an asv command, keep its exit status for the verdict
  local name=$1 status=0
  shift
  "$@" || status=$?
  echo "asv-gate: $name exited $status"
  statuses+=(--asv "$name=$status")
}

# BASE's suite, listed in BASE's environment (benchmarks.json only, nothing measured).
asv_status "asv run (listing BASE's suite)" "${asv[@]}" run --config "$work/base.conf.json" \
  --machine "$machine" --bench just-discover "$base_hash^!"
# Wall time: rounds interleaved across the two commits, so a busy spell hits both.
asv_status "asv run (wall time)" "${run[@]}" --interleave-rounds -a rounds=4 --bench "$wall_bench"
if [ -n "$count_bench" ]; then
  # Counts: one valgrind run per backend and commit (no rounds: they are deterministic).
  asv_status "asv run (counts)" "${run[@]}" --bench "$count_bench"
fi

status=0
report=$("$python" scripts/asv-gate-verdict.py "$work/results" "$machine" "$base_hash" "$head_hash" \
  --wall-factor "$wall_factor" --count-factor "$count_factor" --wall-regex "$wall_bench" \
  --count-regex "$count_bench" --base-suite "$work/base-suite/results/benchmarks.json" \
  "${statuses[@]}") || status=$?
printf '## asv gate: %s (%s) against %s (%s), exit %s\n\n%s\n' "$head" "${head_hash:0:8}" \
  "$base" "${base_hash:0:8}" "$status" "$report" > "$work/summary.md"
echo
cat "$work/summary.md"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  cat "$work/summary.md" >> "$GITHUB_STEP_SUMMARY"
fi
exit "$status"
