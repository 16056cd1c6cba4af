#!/usr/bin/env bash
# The benchmark history job's measuring step: choose the commits to measure
# (scripts/ci-select-commits.py), run asv on them in real per-commit environments, then publish
# the site (scripts/asv-history.sh, scripts/asv-publish.sh). Earlier results must already be in
# .asv/results (scripts/ci-results-branch.sh restore) and the machine described
# (scripts/ci-asv-setup.sh).
#
#   scripts/ci-benchmarks.sh [RANGE] [more asv run options, e.g. -b REGEX]
#
#   ASV_RANGE        RANGE when no argument gives one. Default: NEW (the commits after the newest
#                    one measured on this machine) when this machine has results, else HEAD^!
#                    (a first run, or a runner with a CPU model not seen before, does not try to
#                    measure the whole history)
#   ASV_MAX_COMMITS  at most this many commits, spread evenly over the range (default 10, at most
#                    20: about what the workflow's measuring step has time for; the step's own
#                    timeout stops a run that needs longer, keeping what it measured)
#   ASV_QUICK        "true": asv --quick (each benchmark once; for backfilling a long history)
#   ASV_REMEASURE    "true": measure commits that already have results too, adding samples to
#                    theirs (asv --append-samples): the weekly full pass over main's tip
#
# Commits that already have results for this machine are never measured twice (unless
# ASV_REMEASURE). When nothing is new the run says so, publishes the site from the stored
# results and exits 0. Exits 2 when an input is invalid or a benchmark failed (after publishing
# what did run).
set -euo pipefail
source "$(dirname "$0")/asv-common.sh"
steps=${ASV_MAX_COMMITS:-10}
max_commits=20
results=.asv/results

range=${ASV_RANGE:-}
if [ $# -ge 1 ] && [ "${1#-}" = "$1" ]; then
  range=$1
  shift
fi
if [ -z "$range" ]; then
  if compgen -G "$results/$machine/*-*.json" >/dev/null; then range=NEW; else range="HEAD^!"; fi
fi
if ! [[ $steps =~ ^[1-9][0-9]*$ ]] || [ "$steps" -gt "$max_commits" ]; then
  echo "ci-benchmarks: ASV_MAX_COMMITS must be a whole number from 1 to $max_commits, not '$steps'" >&2
  exit 2
fi
if ! [[ $range =~ ^[A-Za-z0-9_./~^:@!-]+$ ]]; then
  echo "ci-benchmarks: '$range' is not a commit range (NEW, ALL, HASHFILE:path, A..B, X^!)" >&2
  exit 2
fi
options=(--show-stderr)
select=()
case "${ASV_QUICK:-false}" in true) options+=(--quick) ;; false|"") ;; *)
  echo "ci-benchmarks: ASV_QUICK must be true or false, not '$ASV_QUICK'" >&2; exit 2 ;; esac
case "${ASV_REMEASURE:-false}" in true) options+=(--append-samples); select+=(--remeasure) ;; false|"") ;; *)
  echo "ci-benchmarks: ASV_REMEASURE must be true or false, not '$ASV_REMEASURE'" >&2; exit 2 ;; esac

echo "ci-benchmarks: machine $machine, range $range, at most $steps commits ${options[*]}"
hashes=$(mktemp)
trap 'rm -f "$hashes"' EXIT
"$python" scripts/ci-select-commits.py "$range" "$machine" "$steps" "${select[@]}" > "$hashes"
if [ ! -s "$hashes" ]; then
  echo "ci-benchmarks: nothing new to measure: every commit in $range already has results for $machine"
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    echo "Nothing new to measure: every commit in \`$range\` already has results for \`$machine\`." >> "$GITHUB_STEP_SUMMARY"
  fi
  scripts/asv-publish.sh
  exit 0
fi
echo "ci-benchmarks: measuring $(wc -l < "$hashes") commit(s):" $(cut -c1-12 "$hashes")
scripts/asv-history.sh "HASHFILE:$hashes" "${options[@]}" "$@"
