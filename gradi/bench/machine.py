"""What a benchmark ran on: CPU, cores, memory, OS and the versions of every stack.

Timings mean little without the machine and the toolchain; ``describe()`` gathers them without
importing the heavy libraries (versions come from package metadata) and never fails: anything
it cannot find is reported as None.
"""

import importlib.metadata
import os
import platform
import subprocess

import gradi

from .. import host
from .sourcelines import repository_roots

PACKAGES = ("numpy", "scipy", "jax", "jaxlib", "matplotlib", "plotly", "mojo", "max")


def describe():
    """A JSON-ready dict describing this machine and the software the benchmark used."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": host.usable_cores(),
        "memory_bytes": host.physical_memory(),
        "load_average": busy_load(),
        "os": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "packages": {name: _package_version(name) for name in PACKAGES},
        "compiler": _first_line(["gcc", "--version"]),
        "mojo": _mojo_version(),
        "gradi": gradi.__version__,
        "git_commit": _git_commit(),
    }


def busy_load():
    """The 1, 5 and 15-minute load averages (None where unknown): other work skews timings."""
    try:
        return list(os.getloadavg())
    except (OSError, AttributeError):
        return None


def _cpu_model():
    return host.cpuinfo_field("model name") or platform.processor() or None


def _package_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _first_line(command, cwd=None):
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=30, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = run.stdout.strip().splitlines()
    return lines[0].strip() if run.returncode == 0 and lines else None


def _mojo_version():
    """``mojo --version`` (the mojo next to this Python first), else the mojo package's version."""
    mojo = host.executable("mojo")
    return (mojo and _first_line([mojo, "--version"])) or _package_version("mojo")


def _git_commit():
    """The gradi repository's commit (``-dirty`` if it has local changes), or None outside one.

    The repository is the one holding the imported package, else the working directory if it
    is a gradi checkout (an installed gradi run from the clone it was built from).
    """
    for root in repository_roots():
        if not (root / "gradi" / "__init__.py").is_file():
            continue
        commit = _first_line(["git", "rev-parse", "HEAD"], cwd=root)
        if commit is not None:
            status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                    capture_output=True, text=True, timeout=30)
            return commit + ("-dirty" if status.stdout.strip() else "")
    return None
