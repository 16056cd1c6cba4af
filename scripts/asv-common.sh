# Sourced by the asv-*.sh scripts: run from the repository root, find the Python that has asv,
# and make sure asv knows this machine without prompting (CI has no stdin).
#   GRADI_VENV  virtualenv to use (default .venv; python3 when it does not exist)
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv=${GRADI_VENV:-.venv}
python=python3
if [ -x "$venv/bin/python" ]; then
  python="$(cd "$venv" && pwd)/bin/python"  # absolute: callers run it from other folders too
fi
asv=("$python" -m asv)
# An existing machine file is kept (scripts/ci-asv-setup.sh registers a fixed CI machine name);
# with a single entry asv uses it whatever the hostname.
if [ ! -f "$HOME/.asv-machine.json" ]; then
  "${asv[@]}" machine --yes >/dev/null
fi
# The machine name asv uses: the hostname's entry, else the file's only entry.
machine=$("$python" - <<'PY'
import json, os, socket
machines = [name for name in json.load(open(os.path.expanduser("~/.asv-machine.json"))) if name != "version"]
print(socket.gethostname() if socket.gethostname() in machines else machines[0])
PY
)
