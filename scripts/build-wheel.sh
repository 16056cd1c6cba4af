#!/usr/bin/env bash
# Build gradi's wheel into dist/ and, where Mojo is installed, compile the Mojo extension into
# gradi's cache. CI's build job runs this; it runs the same way on a workstation.
#
#   scripts/build-wheel.sh [--with-mojo]
#
# The wheel holds the C++ extension, compiled from native/ by scikit-build-core in pip's isolated
# build environment (only PyPI is needed: pybind11, cmeel-eigen, cmake via scikit-build-core).
# Mojo cannot be compiled into the wheel: a Mojo shared library keeps an absolute RUNPATH to the
# compiler's runtime libraries, which inside pip's build environment would point to a deleted
# folder. So the wheel ships the .mojo sources and gradi compiles them on first use into
# $GRADI_CACHE_DIR/mojo (default ~/.cache/gradi/mojo), keyed by the sources, the compiler version,
# the compiler's real path and the host CPU. This script warms that cache from the wheel's own
# sources, so a CI job can hand the compiled extension to another job whose Python (and so
# compiler) lives at the same path on the same kind of CPU; elsewhere gradi simply compiles again.
#
#   PYTHON        interpreter whose environment provides Mojo (default .venv/bin/python, else python3)
#   GRADI_DIST    output folder for the wheel (default dist/ in the repository)
#   --with-mojo   first install the wheel with its [mojo] extra into PYTHON's environment (CI:
#                 the runner's throwaway Python), so the Mojo extension is always compiled;
#                 without it the cache is warmed only if a mojo compiler is already there.
set -euo pipefail
# Interpreter and folder given relative to where the script was called from: absolute from here
# on, since the script works from the repository root and the wheel's unpacked copy.
absolute() { case "$1" in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "$1" ;; esac; }
case "${PYTHON:-}" in */*) PYTHON=$(absolute "$PYTHON") ;; esac  # a bare name is found on PATH
if [ -n "${GRADI_DIST:-}" ]; then GRADI_DIST=$(absolute "$GRADI_DIST"); fi
self=$(absolute "$0")
cd "$(dirname "$0")/.."

with_mojo=0
for arg in "$@"; do
  case "$arg" in
    --with-mojo) with_mojo=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$self"; exit 0 ;;
    *) echo "build-wheel.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON="$PWD/.venv/bin/python"; else PYTHON=python3; fi
fi
dist=${GRADI_DIST:-$PWD/dist}
mkdir -p "$dist"

# 1. The wheel. Older gradi wheels in dist/ are removed so exactly one is left for the next step.
rm -f "$dist"/gradi-*.whl
start=$(date +%s)
"$PYTHON" -m pip wheel --no-deps --wheel-dir "$dist" .
wheels=("$dist"/gradi-*.whl)
wheel=${wheels[0]}
echo "built $wheel in $(( $(date +%s) - start )) s"
"$PYTHON" -m zipfile -l "$wheel" | grep -E '_native|\.so|\.mojo' || true

# 2. The Mojo extension, compiled from the sources inside the wheel.
if [ "$with_mojo" = 1 ]; then
  "$PYTHON" -m pip install "${wheel}[mojo]"
fi
bindir=$(dirname "$(command -v "$PYTHON")")
if [ -x "$bindir/mojo" ] || [ -n "${GRADI_MOJO:-}" ] || command -v mojo >/dev/null 2>&1; then
  unpacked=$(mktemp -d)
  trap 'rm -rf "$unpacked"' EXIT
  "$PYTHON" -m zipfile -e "$wheel" "$unpacked"
  # Run from the unpacked wheel so exactly the shipped sources are compiled; the cache key
  # depends on their content, so the installed package finds the same build.
  start=$(date +%s)
  (cd "$unpacked" && PYTHONPATH="$unpacked" PYTHONSAFEPATH=1 "$PYTHON" -m gradi.backends.mojo_build)
  echo "Mojo extension ready in $(( $(date +%s) - start )) s (cache: ${GRADI_CACHE_DIR:-~/.cache/gradi}/mojo)"
else
  echo "no mojo compiler beside $PYTHON or on PATH: Mojo cache not warmed (gradi compiles it on first use)"
fi
