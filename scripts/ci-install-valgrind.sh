#!/usr/bin/env bash
# Make valgrind available for the counted (instructions, estimated cycles) benchmark tracks and
# their tests: the distribution's package, installed with apt-get when it is missing (as root,
# or through password-less sudo as on GitHub's runners). Without it those tracks skip with the
# reason, so a machine where it cannot be installed still runs everything else.
#   scripts/ci-install-valgrind.sh
set -euo pipefail
if command -v valgrind >/dev/null 2>&1; then
  echo "ci-install-valgrind: $(valgrind --version) already installed"
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  sudo=()
elif sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "ci-install-valgrind: valgrind is missing and this user cannot run apt-get (no root, no sudo)" >&2
  exit 1
fi
echo "ci-install-valgrind: installing the distribution's valgrind package"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends valgrind >/dev/null
echo "ci-install-valgrind: $(valgrind --version) installed"
