#!/usr/bin/env bash
# Prepare a machine for the asv jobs: install asv (and virtualenv, which builds asv's per-commit
# environments) into PYTHON's environment, and register this machine under one stable asv machine
# name. CI runners get a new hostname every run; without a fixed name each run would start a new
# machine in the results and no history would form.
#
#   PYTHON        interpreter to install asv into (default .venv/bin/python, else python3)
#   ASV_MACHINE       machine name (default gh-ubuntu-2core: GitHub's standard Linux runner)
#   ASV_MACHINE_CPU   CPU description to record instead of this machine's CPU model
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
# asv draws one graph line per distinct machine description, so the description must not change
# from run to run: the OS is the distribution (not the kernel build), the RAM is rounded to GB,
# and ASV_MACHINE_CPU can replace the CPU model, which differs between runners of one class
# (the workflows set it; the real model is still printed below for reading the noise).
# shellcheck disable=SC1091  # the distribution's own file, read at run time
os_name=$(. /etc/os-release 2>/dev/null && echo "${ID:-} ${VERSION_ID:-}")
"$PYTHON" - "$machine" "$(uname -s) ${os_name}" "${ASV_MACHINE_CPU:-}" <<'PY'
import sys
from asv.machine import Machine, MachineCollection
name, os_name, cpu = sys.argv[1:]
info = Machine.get_defaults()
print(f"this runner: cpu={info['cpu']}, os={info['os']}, ram={info['ram']} bytes")
info.update(machine=name, os=os_name.strip(), ram=f"{round(int(info['ram']) / 2**30)}GB")
if cpu:
    info["cpu"] = cpu
MachineCollection.save(name, info)
print("asv machine:", ", ".join(f"{k}={v}" for k, v in info.items()))
PY
