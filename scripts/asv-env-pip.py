#!/usr/bin/env python3
"""Run pip inside an asv benchmark environment with the benchmarked commit's pinned versions.

asv.conf.json's build and install commands call this with the environment's python:

    python {conf_dir}/scripts/asv-env-pip.py {build_dir} wheel|install ARGS...

The pins are the commit's own benchmarks/requirements-env.txt, so a dependency bump is measured
as the commit that made it; a commit older than that file gets the checkout's copy (the one
beside this script). They apply both to what pip installs and to the wheel build's isolated
build dependencies (PIP_BUILD_CONSTRAINT; PIP_CONSTRAINT for pips older than 26.2).
"""

import os
import sys
from pathlib import Path

LOCK = Path("benchmarks") / "requirements-env.txt"


def lock_for(build_dir):
    """The commit's lock file, else the current checkout's."""
    own = Path(build_dir) / LOCK
    return own if own.is_file() else Path(__file__).resolve().parents[1] / LOCK


def main(argv):
    if len(argv) < 2:
        print("usage: asv-env-pip.py BUILD_DIR PIP-COMMAND [ARGS...]", file=sys.stderr)
        return 2
    build_dir, pip_args = argv[0], argv[1:]
    lock = lock_for(build_dir)
    if not lock.is_file():
        print(f"asv-env-pip: no pin file at {lock}", file=sys.stderr)
        return 2
    print(f"asv-env-pip: pins from {lock}", flush=True)
    env = dict(os.environ, PIP_CONSTRAINT=str(lock), PIP_BUILD_CONSTRAINT=str(lock))
    command = [sys.executable, "-m", "pip", *pip_args]
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
