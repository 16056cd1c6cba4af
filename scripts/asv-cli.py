#!/usr/bin/env python3
"""asv's command line, with the machine file kept in the project instead of ~/.asv-machine.json.

    python scripts/asv-cli.py ASV-ARGS...      (what scripts/asv-common.sh runs as "asv")

asv reads and rewrites ~/.asv-machine.json on every run; the scripts must not touch a user's own
file, so this points asv at $ASV_MACHINE_FILE (default .asv/asv-machine.json in the repository,
beside the results). asv has no option for it: asv.machine.MachineCollection.get_machine_file_path
is replaced before asv's own main runs (asv is pinned, benchmarks/requirements-asv.txt).
"""

import os
import sys
from pathlib import Path

from asv import machine
from asv.main import main

ROOT = Path(__file__).resolve().parents[1]


def machine_file():
    """Where asv keeps this project's machine descriptions."""
    return os.path.abspath(os.environ.get("ASV_MACHINE_FILE") or ROOT / ".asv" / "asv-machine.json")


if __name__ == "__main__":
    path = machine_file()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    machine.MachineCollection.get_machine_file_path = staticmethod(lambda: path)
    sys.exit(main())
