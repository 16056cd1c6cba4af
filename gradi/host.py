"""What the solver core needs to know about this host: usable cores, memory, CPU, executables,
and NumPy's BLAS thread pool.

One reader for each of /proc/cpuinfo and /proc/meminfo, so the memory guard, the Mojo build
(which compiles for this CPU) and the benchmark's machine description agree. Every function
answers None where the system will not say, and never raises.
"""

import functools
import os
import shutil
import sys
from pathlib import Path

from threadpoolctl import ThreadpoolController


def usable_cores():
    """Cores this process may run on (its CPU affinity: taskset, containers), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@functools.cache
def _blas_pools():
    """Find NumPy's BLAS once; re-scanning the loaded libraries on every call costs ~0.1 ms."""
    return ThreadpoolController()


def one_blas_thread():
    """A context in which NumPy's BLAS runs on the calling thread only.

    OpenBLAS's worker threads keep spinning for a while after each multi-threaded call: a
    parallel kernel timed in that window shares its cores with them (README, "Fairness rules").
    """
    return _blas_pools().limit(limits=1, user_api="blas")


def meminfo_bytes(field):
    """A field of /proc/meminfo (e.g. "MemAvailable") in bytes; None where there is none."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def physical_memory():
    """Bytes of memory the machine has (None if the system will not say)."""
    total = meminfo_bytes("MemTotal")
    if total is not None:
        return total
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def available_memory():
    """Bytes the machine can still give (MemAvailable on Linux, else physical memory, else None)."""
    return meminfo_bytes("MemAvailable") or physical_memory()


def cpuinfo_field(field):
    """The first value of ``field`` (e.g. "model name", "flags") in /proc/cpuinfo, or None."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                name, _, value = line.partition(":")
                if name.strip() == field:
                    return value.strip()
    except OSError:
        pass
    return None


def executable(name):
    """Path of the program ``name``: beside this Python (its virtualenv) first, else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)
