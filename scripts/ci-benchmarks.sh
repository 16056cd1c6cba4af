#!/usr/bin/env bash
# The benchmark history job's measuring step: run asv, in real per-commit environments, over the
# commits of main that have no results yet for this machine, then publish the site (both done by
# scripts/asv-history.sh). Earlier results must already be in .asv/results
# (scripts/ci-results-branch.sh restore) and the machine named (scripts/ci-asv-setup.sh).
#
#   scripts/ci-benchmarks.sh [RANGE] [more asv run options, e.g. --quick -b REGEX]
#
# RANGE defaults to NEW (asv: every commit after the newest one that has results) when this
# machine has results, else to HEAD^! (just the current commit): a first run does not try to
# measure the whole history. --skip-existing-commits is always passed, so a commit that already
# has results is never measured twice.
#
#   ASV_MACHINE       machine name whose results count as existing (default gh-ubuntu-2core)
#   ASV_MAX_COMMITS   at most this many commits per run, spread evenly over the range (asv
#                     --steps; default 10), so a burst of pushes cannot outlast the job's timeout
set -euo pipefail
cd "$(dirname "$0")/.."
machine=${ASV_MACHINE:-gh-ubuntu-2core}
steps=${ASV_MAX_COMMITS:-10}
results=.asv/results

if [ $# -ge 1 ] && [ "${1#-}" = "$1" ]; then
  range=$1
  shift
elif compgen -G "$results/$machine/*-*.json" >/dev/null; then
  range=NEW
else
  range="HEAD^!"
fi
echo "ci-benchmarks: machine $machine, range $range, at most $steps commits"
exec scripts/asv-history.sh "$range" --skip-existing-commits --steps "$steps" "$@"
