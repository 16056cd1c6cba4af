#!/usr/bin/env bash
# Set up gradi from a clean clone: a virtualenv with gradi and every optional stack installed,
# the C++ extension compiled from native/ by `pip install .`.
# Needs only Python 3.11, a C++ compiler, cmake and make; everything else comes from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${GRADI_VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet ".[all,test]"
