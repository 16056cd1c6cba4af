"""Counted work: instructions and estimated cycles per pair-update, from valgrind's callgrind.

Wall time on a shared machine moves by tens of percent from run to run; the work a call does
does not. Each backend runs in a process of its own under ``valgrind --tool=callgrind`` with
instrumentation off (``--instr-atstart=no``): the child (``gradi.bench.count_descend``) imports,
validates, prepares (compiles, JITs) and warms the backend uncounted, then switches callgrind on
around exactly one ``descend`` call with the client requests pytest-codspeed ships
(``pytest_codspeed.instruments.hooks.dist_instrument_hooks``, valgrind's own ``callgrind.h``
macros compiled). Everything is fixed so a count depends on the code only, never on the runner:

- one thread, and the child pinned to one CPU (thread pools sized by the affinity get one
  worker, so no idle worker spins inside the counted call);
- valgrind's virtual CPU: AVX2 and FMA but no AVX-512, whatever the host has, so every backend
  runs its x86-64-v3 path (the child refuses to count if AVX-512 shows through); Mojo counts a
  build for ``COUNTED_CPU``, JAX is capped at AVX2;
- the cache simulation uses CodSpeed's fixed geometry (``CACHE``), not the host's;
- address-space randomisation off (``setarch -R``), Python's hash seed fixed, Python's
  allocator replaced by malloc (CodSpeed's choice), BLAS/OpenMP pools at one thread, JAX's
  dispatch synchronous.

Estimated cycles (CodSpeed's style: instructions plus weighted cache misses; the weights are
Itamar Turner-Trauring's, as used by iai and pythonspeed's consistent-benchmarking article):
``Ir + LL_HIT_CYCLES * (L1 misses served by LL) + RAM_CYCLES * (LL misses)``, where L1 misses
are I1mr + D1mr + D1mw and LL misses ILmr + DLmr + DLmw. Both figures are reported per
pair-update, ``N^2 * iterations``, so sizes compare.
"""

import concurrent.futures
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import host
from ..columns import aligned

# CodSpeed's simulated caches: 32 KiB 8-way L1 instruction and data caches, 8 MiB 16-way LL,
# 64-byte lines. Fixed, so a count does not depend on the cache sizes of the runner.
CACHE = ("--I1=32768,8,64", "--D1=32768,8,64", "--LL=8388608,16,64")
LL_HIT_CYCLES = 5  # extra cycles of an access that missed L1 and was served by LL
RAM_CYCLES = 35  # extra cycles of an access that missed LL (served by memory)
COUNTED_CPU = "x86-64-v3"  # the x86-64 level every backend runs under valgrind
DIM = 3  # the blog's sphere
DTYPE = "float32"
# (N, iterations) per backend: small enough that a run under valgrind takes seconds, large
# enough that the per-call overhead is a small part. The seed tiers that loop in Python cost
# thousands of instructions per pair, so they count a smaller problem.
SIZE = (200, 100)
SMALL_SIZES = {"python": (30, 4), "numpy-loops": (30, 4)}
TIMEOUT_SECONDS = 1800
EVENTS = ("Ir", "I1mr", "D1mr", "D1mw", "ILmr", "DLmr", "DLmw")
# What the counted child inherits: where the caches and the Mojo compiler are.
KEPT_VARIABLES = ("HOME", "TMPDIR", "XDG_CACHE_HOME", "GRADI_CACHE_DIR", "GRADI_MOJO")


class NotCountable(Exception):
    """This backend (or this machine) cannot be counted here; the message says why."""


class CountFailed(RuntimeError):
    """The counted run itself failed (a crash, a wrong result, valgrind's error)."""


@dataclass(frozen=True)
class Count:
    """One backend's counted ``descend`` call: raw callgrind events and the size it ran."""

    backend: str
    n: int
    niter: int
    events: dict
    code_path: str

    @property
    def pair_updates(self):
        return self.n * self.n * self.niter

    @property
    def instructions(self):
        return self.events["Ir"]

    @property
    def estimated_cycles(self):
        return estimated_cycles(self.events)

    @property
    def instructions_per_pair(self):
        return self.instructions / self.pair_updates

    @property
    def cycles_per_pair(self):
        return self.estimated_cycles / self.pair_updates


def estimated_cycles(events):
    """Instructions plus the weighted L1 and LL misses (see the module docstring)."""
    l1_misses = events["I1mr"] + events["D1mr"] + events["D1mw"]
    ll_misses = events["ILmr"] + events["DLmr"] + events["DLmw"]
    return events["Ir"] + LL_HIT_CYCLES * (l1_misses - ll_misses) + RAM_CYCLES * ll_misses


def size(backend):
    """(N, iterations) counted for ``backend``."""
    return SMALL_SIZES.get(backend, SIZE)


def unavailable_reason():
    """None when counting can run here, else why not (one line)."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return f"counting needs valgrind on x86-64 Linux, not {sys.platform}/{platform.machine()}"
    for tool, package in (("valgrind", "valgrind"), ("setarch", "util-linux")):
        if host.executable(tool) is None:
            return f"{tool} is not installed (Debian/Ubuntu: apt-get install {package})"
    try:
        import pytest_codspeed.instruments.hooks.dist_instrument_hooks  # noqa: F401
    except ImportError as exc:
        return f"pytest-codspeed's valgrind hooks are not importable ({exc}); pip install 'gradi[bench]'"
    return None


def valgrind_version():
    """valgrind's version line (e.g. "valgrind-3.19.0"), or None without valgrind."""
    tool = host.executable("valgrind")
    if tool is None:
        return None
    done = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=60)
    return done.stdout.strip() or None


def child_environment(cpu):
    """The counted child's whole environment: only what it needs, pinned (module docstring).

    Nothing is inherited beyond KEPT_VARIABLES: the environment's size moves where the heap's
    blocks land, and with them the alignment of small arrays, which changes the instruction
    count of NumPy's vector loops (numpy-loops moved 1.6% between a shell and an asv process).
    """
    import gradi

    env = {name: os.environ[name] for name in KEPT_VARIABLES if name in os.environ}
    source_root = str(Path(gradi.__file__).resolve().parent.parent)  # count the gradi we are
    env.update({
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        "PYTHONPATH": source_root,
        "PYTHONHASHSEED": "0",
        "PYTHONMALLOC": "malloc",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "JAX_CPU_ENABLE_ASYNC_DISPATCH": "false",
        "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false --xla_cpu_max_isa=AVX2",
        "GRADI_MOJO_TARGET_CPU": COUNTED_CPU,
        "GRADI_COUNT_CPU": str(cpu),
    })
    return env


def command(backend, n, niter, callgrind_file, result_file):
    """The valgrind command line that counts one ``descend`` of ``backend``."""
    return [host.executable("setarch"), platform.machine(), "-R",
            host.executable("valgrind"), "--tool=callgrind", "--instr-atstart=no", "--cache-sim=yes",
            *CACHE, f"--callgrind-out-file={callgrind_file}",
            sys.executable, "-P", "-m", "gradi.bench.count_descend",
            backend, str(n), str(DIM), str(niter), DTYPE, str(result_file)]


def read_totals(path):
    """The callgrind events of a run: the ``totals:`` line named by the ``events:`` line."""
    names = totals = None
    with open(path) as output:
        for line in output:
            if line.startswith("events:"):
                names = line.split()[1:]
            elif line.startswith("totals:"):
                totals = [int(value) for value in line.split()[1:]]
    if names is None or totals is None:
        raise CountFailed(f"callgrind wrote no totals to {path}")
    events = dict(zip(names, totals + [0] * (len(names) - len(totals))))
    missing = [name for name in EVENTS if name not in events]
    if missing:
        raise CountFailed(f"callgrind did not simulate the caches (no {', '.join(missing)})")
    return events


def count(backend, n=None, niter=None, cpu=None):
    """Count one ``descend`` call of ``backend`` at (N, iterations) (default ``size(backend)``).

    Raises NotCountable with the reason when it cannot run here (no valgrind, backend
    unavailable, a build for another CPU), CountFailed when the run failed.
    """
    reason = unavailable_reason()
    if reason is not None:
        raise NotCountable(reason)
    default_n, default_niter = size(backend)
    n, niter = n or default_n, niter or default_niter
    cpu = min(os.sched_getaffinity(0)) if cpu is None else cpu
    _prebuild(backend)
    with tempfile.TemporaryDirectory(prefix="gradi-count-") as folder:
        callgrind_file, result_file = Path(folder) / "callgrind.out", Path(folder) / "result.json"
        try:
            done = subprocess.run(command(backend, n, niter, callgrind_file, result_file),
                                  env=child_environment(cpu), capture_output=True, text=True,
                                  timeout=TIMEOUT_SECONDS, cwd=folder)
        except subprocess.TimeoutExpired:
            raise CountFailed(f"{backend}: counting took more than {TIMEOUT_SECONDS} s") from None
        result = json.loads(result_file.read_text()) if result_file.is_file() else {}
        if result.get("skipped"):
            raise NotCountable(result["skipped"])
        if done.returncode != 0 or "code_path" not in result:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
            raise CountFailed(f"{backend}: the counted run failed (exit {done.returncode}):\n{tail}")
        return Count(backend, n, niter, read_totals(callgrind_file), result["code_path"])


def _prebuild(backend):
    """Build the Mojo extension for COUNTED_CPU outside valgrind (compiling under it is slow)."""
    from ..backends import BACKENDS, mojo_build

    if backend in BACKENDS and BACKENDS[backend].language == "Mojo":
        try:
            mojo_build.build(target_cpu=COUNTED_CPU)
        except ImportError:
            pass  # the child reports the backend unavailable, with the reason


def count_all(backends, jobs=None):
    """{backend: Count, NotCountable or CountFailed} for each name, ``jobs`` children at a time.

    The children are pinned round-robin to the CPUs this process may use; counts do not depend
    on how many run at once (each valgrind simulates its own caches).
    """
    cpus = sorted(os.sched_getaffinity(0))
    jobs = jobs or min(len(cpus), 4)

    def one(index_name):
        index, name = index_name
        try:
            return name, count(name, cpu=cpus[index % len(cpus)])
        except (NotCountable, CountFailed) as exc:
            return name, exc

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        return dict(pool.map(one, enumerate(backends)))


def format_table(outcomes):
    """The table ``gradi bench --measure instructions`` prints, one row per backend."""
    header = ("backend", "N", "iterations", "instructions/pair", "est. cycles/pair", "code path")
    rows = [header]
    notes = []
    for name, outcome in outcomes.items():
        if isinstance(outcome, Count):
            rows.append((name, str(outcome.n), str(outcome.niter),
                         f"{outcome.instructions_per_pair:,.2f}", f"{outcome.cycles_per_pair:,.2f}",
                         outcome.code_path))
        else:
            word = "skipped" if isinstance(outcome, NotCountable) else "FAILED"
            rows.append((name, "", "", word, "", ""))
            notes.append(f"{name}: {word}: {outcome}")
    return "\n".join(aligned(rows, right={1, 2, 3, 4}) + notes)
