# Sourced by the asv-*.sh and ci-*.sh scripts: run from the repository root, find the Python that
# has asv, and make sure asv knows this machine without prompting (CI has no stdin).
#   GRADI_VENV        virtualenv to use (default .venv; python3 when it does not exist)
#   ASV_MACHINE_FILE  asv's machine file (default .asv/asv-machine.json, in this repository:
#                     the user's ~/.asv-machine.json is never read or written; scripts/asv-cli.py)
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv=${GRADI_VENV:-.venv}
python=python3
if [ -x "$venv/bin/python" ]; then
  python="$(cd "$venv" && pwd)/bin/python"  # absolute: callers run it from other folders too
fi
asv=("$python" "$PWD/scripts/asv-cli.py")
export ASV_MACHINE_FILE="${ASV_MACHINE_FILE:-$PWD/.asv/asv-machine.json}"
# The pinned versions also hold while asv creates an environment (pip, wheel, build, asv_runner);
# each commit's build and install use that commit's own copy (scripts/asv-env-pip.py).
export PIP_CONSTRAINT="$PWD/benchmarks/requirements-env.txt"
# An existing machine file is kept (scripts/ci-asv-setup.sh names CI's machine by its CPU model);
# with a single entry asv uses it whatever the hostname.
if [ ! -f "$ASV_MACHINE_FILE" ]; then
  echo "asv: describing this machine in $ASV_MACHINE_FILE (asv machine --yes)"
  "${asv[@]}" machine --yes >/dev/null
fi
# The machine name asv uses: the hostname's entry, else the file's only entry.
machine=$("$python" - <<'PY'
import json, os, socket
machines = [name for name in json.load(open(os.environ["ASV_MACHINE_FILE"])) if name != "version"]
print(socket.gethostname() if socket.gethostname() in machines else machines[0])
PY
)
