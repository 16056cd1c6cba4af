#!/usr/bin/env bash
# Benchmark a range of commits in real asv environments (each commit built from source, C++ and
# Mojo included) into .asv/results, then publish the site to .asv/html.
#   scripts/asv-history.sh RANGE [more `asv run` options]
# RANGE is anything `asv run` takes: main~3..main, HEAD^!, NEW, ALL, HASHFILE:path.
# Add --skip-existing-commits to measure only commits without results. The site is written by
# scripts/asv-publish.sh (libraries shipped with it, so it works offline).
# Exits 2 when a benchmark failed (asv's code), after publishing what did run.
set -euo pipefail
source "$(dirname "$0")/asv-common.sh"
range=${1:?usage: scripts/asv-history.sh RANGE [asv run options]}
shift

status=0
"${asv[@]}" run --machine "$machine" "$range" "$@" || status=$?
scripts/asv-publish.sh
exit "$status"
