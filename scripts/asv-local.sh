#!/usr/bin/env bash
# Run the asv suite in the current environment (no second environment is built), record the
# results against HEAD, publish the HTML site (scripts/asv-publish.sh) and say where it is.
#   scripts/asv-local.sh [--quick] [more `asv run` options, e.g. -b 'bench_solve.*numpy']
# It measures the gradi that the environment imports: the installed one (scripts/setup.sh
# installs the working tree, C++ extension included), else the working tree's sources.
# Exits 2 when a benchmark failed (asv's code), after publishing what did run.
set -euo pipefail
source "$(dirname "$0")/asv-common.sh"

if installed=$(cd / && "$python" -c 'import gradi, os; print(os.path.dirname(gradi.__file__))' 2>/dev/null); then
  echo "asv-local: measuring gradi installed at $installed"
  stale=$(cd gradi && find . -name '*.py' -print0 | while IFS= read -r -d '' file; do
    cmp -s "$file" "$installed/$file" || echo "$file"
  done)
  if [ -n "$stale" ]; then
    echo "asv-local: WARNING: the installed gradi differs from the working tree in:" $stale
    echo "asv-local: reinstall it (scripts/setup.sh) to measure the working tree"
  fi
else
  # asv removes PYTHONPATH from sys.path in its benchmark processes unless ASV_PYTHONPATH is set;
  # PYTHONPATH itself reaches the fresh interpreters of the cold-start benchmark.
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" ASV_PYTHONPATH="$PWD"
  echo "asv-local: gradi is not installed; measuring the working tree's sources" \
       "(the C++ backends need 'pip install .')"
fi
if [ -n "$(git status --porcelain -- gradi native mojo pyproject.toml)" ]; then
  echo "asv-local: note: uncommitted changes are measured but recorded against HEAD"
fi

status=0
"${asv[@]}" run --machine "$machine" --python=same --set-commit-hash "$(git rev-parse HEAD)" "$@" || status=$?
scripts/asv-publish.sh
exit "$status"
