#!/usr/bin/env bash
# Prepare a machine for the asv jobs: install asv (and virtualenv, which builds asv's per-commit
# environments) into PYTHON's environment, and register this machine under one stable asv machine
# name. CI runners get a new hostname every run; without a fixed name each run would start a new
# machine in the results and no history would form.
#
#   PYTHON        interpreter to install asv into (default .venv/bin/python, else python3)
#   ASV_MACHINE   machine name (default gh-ubuntu-2core: GitHub's standard Linux runner)
#
# asv keeps machine descriptions in ~/.asv-machine.json; when it holds a single machine, asv run
# and asv continuous use it without --machine, so the asv scripts need no extra option.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
machine=${ASV_MACHINE:-gh-ubuntu-2core}

"$PYTHON" -m pip install "asv==0.6.6" "virtualenv>=20.26"

# The equivalent of `asv machine --machine NAME --yes`, through asv's own API: that command
# stores only the fields that differ from its defaults (so no OS, CPU or core count at all).
"$PYTHON" - "$machine" <<'PY'
import sys
from asv.machine import Machine, MachineCollection
info = Machine.get_defaults()
info["machine"] = sys.argv[1]
MachineCollection.save(sys.argv[1], info)
print("asv machine:", ", ".join(f"{k}={v}" for k, v in info.items()))
PY
