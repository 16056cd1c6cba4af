#!/usr/bin/env bash
# The test suite, run one way everywhere: `make test` and CI's test jobs (scripts/test-wheel.sh)
# both end here, so one cannot pass while the other fails. ruff over the repository, then pytest
# against the gradi installed in PYTHON's environment, never the source tree's ./gradi (which has
# no compiled extension).
#
#   scripts/run-tests.sh [PYTEST ARGS...]
#
#   PYTHON   interpreter whose environment holds gradi and the test tools (default
#            .venv/bin/python, else python3)
#
# The environment is set here, not by the callers: PYTHONSAFEPATH=1 (`python -m` and scripts do
# not put the working directory or their own folder on sys.path; with pytest's importlib import
# mode, pyproject.toml, nothing imports ./gradi) and the thread pools (two OpenMP threads, one
# BLAS thread), so a many-core workstation and a CI runner run the tests with the same pools.
set -euo pipefail
# An interpreter given relative to where the script was called from: absolute from here on.
absolute() { case "$1" in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "$1" ;; esac; }
case "${PYTHON:-}" in */*) PYTHON=$(absolute "$PYTHON") ;; esac  # a bare name is found on PATH
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON="$PWD/.venv/bin/python"; else PYTHON=python3; fi
fi
export PYTHONSAFEPATH=1 OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=1

"$PYTHON" -m ruff check .
# The installed gradi, never ./gradi (pytest's header then names it and each backend's state).
case "$("$PYTHON" -c 'import gradi; print(gradi.__file__)')" in
  "$PWD"/gradi/*) echo "run-tests.sh: gradi was imported from the source tree, not the installed package" >&2; exit 1 ;;
esac
exec "$PYTHON" -m pytest "$@"
