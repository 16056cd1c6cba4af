#!/usr/bin/env bash
# Install the wheel that scripts/build-wheel.sh left in dist/ (with every optional stack and the
# test tools) and run the test suite from the repository against that installed package.
# CI's test job runs this; it runs the same way on a workstation.
#
#   scripts/test-wheel.sh [PYTEST ARGS...]
#
#   PYTHON       interpreter whose environment receives the wheel (default .venv/bin/python,
#                else python3): use a throwaway environment, the wheel replaces any gradi there
#   GRADI_DIST   folder holding the wheel (default dist/ in the repository)
#
# The tests then run as `make test` runs them (scripts/run-tests.sh: ruff, then pytest against the
# installed gradi, with the same environment).
set -euo pipefail
# Interpreter and folder given relative to where the script was called from: absolute from here
# on, since the script works from the repository root and the wheel's unpacked copy.
absolute() { case "$1" in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "$1" ;; esac; }
case "${PYTHON:-}" in */*) PYTHON=$(absolute "$PYTHON") ;; esac  # a bare name is found on PATH
if [ -n "${GRADI_DIST:-}" ]; then GRADI_DIST=$(absolute "$GRADI_DIST"); fi
cd "$(dirname "$0")/.."

if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON="$PWD/.venv/bin/python"; else PYTHON=python3; fi
fi
dist=${GRADI_DIST:-$PWD/dist}
wheels=("$dist"/gradi-*.whl)
if [ ! -f "${wheels[0]}" ] || [ ${#wheels[@]} -ne 1 ]; then
  echo "test-wheel.sh: expected exactly one $dist/gradi-*.whl (run scripts/build-wheel.sh)" >&2
  exit 1
fi

"$PYTHON" -m pip install --force-reinstall --no-deps "${wheels[0]}"
"$PYTHON" -m pip install "${wheels[0]}[all,test]"

PYTHON=$PYTHON exec scripts/run-tests.sh "$@"
