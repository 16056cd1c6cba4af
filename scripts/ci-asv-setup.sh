#!/usr/bin/env bash
# Prepare a machine for the asv jobs: install the pinned asv, asv_runner and virtualenv
# (benchmarks/requirements-asv.txt) into PYTHON's environment, and describe this machine in the
# project's asv machine file (.asv/asv-machine.json, or $ASV_MACHINE_FILE; the user's
# ~/.asv-machine.json is never touched) under a name derived from the CPU model.
#
#   PYTHON              interpreter to install asv into (default .venv/bin/python, else python3)
#   ASV_MACHINE_PREFIX  first part of the machine name (default: the hostname; the workflows
#                       use the runner image, gh-ubuntu-24.04)
#   ASV_MACHINE         the whole machine name, when it must be fixed (overrides the derivation)
#
# The name is PREFIX-<cores>cpu-<cpu model>, e.g. gh-ubuntu-24.04-4cpu-amd-epyc-7763: hosted
# runners of one label run on several CPU models, and asv draws one series per machine, so a
# result measured on a different CPU starts its own series instead of looking like a regression
# or an improvement of the code. The description records the real CPU model; the OS is the
# distribution (not the kernel build) and the RAM is rounded to GB, so it stays the same from
# run to run on one kind of runner.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON="$PWD/.venv/bin/python"; else PYTHON=python3; fi
fi
machine_file=${ASV_MACHINE_FILE:-$PWD/.asv/asv-machine.json}

echo "ci-asv-setup: installing the pinned asv tools (benchmarks/requirements-asv.txt)"
"$PYTHON" -m pip install --quiet -r benchmarks/requirements-asv.txt

# shellcheck disable=SC1091  # the distribution's own file, read at run time
os_name=$(. /etc/os-release 2>/dev/null && echo "${ID:-} ${VERSION_ID:-}")
"$PYTHON" - "$machine_file" "${ASV_MACHINE:-}" "${ASV_MACHINE_PREFIX:-$(hostname)}" \
  "$(uname -s) ${os_name}" <<'PY'
import os, re, sys
from asv.machine import Machine, MachineCollection
path, name, prefix, os_name = sys.argv[1:]
info = Machine.get_defaults()
cores = len(os.sched_getaffinity(0))
if not name:
    model = re.sub(r"\((R|TM|tm)\)|\bCPU\b|\bProcessor\b|@.*$|\b\d+-Core\b", " ", info["cpu"])
    slug = re.sub(r"[^a-z0-9.]+", "-", model.lower()).strip("-")
    name = f"{prefix}-{cores}cpu-{slug}"
info.update(machine=name, os=os_name.strip(), num_cpu=str(cores),
            ram=f"{round(int(info['ram']) / 2**30)}GB")
os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
if os.path.exists(path):
    os.remove(path)  # one machine per file: asv then uses it whatever the hostname
MachineCollection.save(name, info, _path=path)
print(f"ci-asv-setup: asv machine {name} in {path}:",
      ", ".join(f"{k}={v}" for k, v in info.items() if k != "machine"))
PY
